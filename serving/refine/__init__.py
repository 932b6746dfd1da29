"""The LLM refine stage: an open LLM reorders the candidates below the fixed top under a deadline.

`build_refiner(settings.refine, redis, lift_file)` is what the serving app calls in its lifespan
(see docs/architecture.md, "Refine seam").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from serving.refine.breaker import CircuitBreaker
from serving.refine.cache import RefineCache
from serving.refine.client import LLMClient
from serving.refine.contract import Refiner
from serving.refine.settings import RefineSettings
from serving.refine.stage import LLMRefiner


def build_refiner(
    settings: RefineSettings, redis: Any = None, lift_file: Path | None = None
) -> Refiner | None:
    """The refiner, or None when no LLM is configured (INTENTREC_LLM_BASE_URL unset).

    `redis`: a `redis.asyncio.Redis` for the result cache (None: no cache). `lift_file`: the
    measured lift `refine=auto` goes by (`RefineSettings.lift_file`; None: `auto` stays off).
    """
    if not settings.llm_base_url:
        return None
    client = LLMClient(
        settings.llm_base_url,
        settings.llm_model,
        api_key=settings.llm_api_key,
        max_connections=settings.refine_max_in_flight,
        timeout_s=settings.refine_call_timeout_s,
    )
    cache = (
        RefineCache(
            redis,
            settings.refine_cache_ttl_s,
            write_timeout_s=settings.refine_cache_write_timeout_ms / 1000.0,
        )
        if redis is not None
        else None
    )
    breaker = CircuitBreaker(settings.refine_breaker_failures, settings.refine_breaker_reset_s)
    return LLMRefiner(settings, client, cache, breaker, lift_file)


__all__ = ["LLMRefiner", "RefineSettings", "build_refiner"]
