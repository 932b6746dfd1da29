"""`intentrec bench refine`: latency of the refine stage against a real LLM server.

Phases, each on fresh user states built from catalog titles:
- cold: a history the server has never seen (only the fixed instructions are prefix-cached);
- warm: the same history with other candidates (instructions + history prefix-cached);
- cache: the warm request again (answered from Redis), and skipped (budget below the minimum);
- burst: `concurrency` requests at once with a `budget_ms` deadline: share within budget + 5 ms.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from serving.refine.contract import Candidate, RefineOutcome
from serving.refine.prompt import refine_prompt
from serving.refine.settings import RefineSettings

SLACK_MS = 5.0


def _pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values or [float("nan")])
    return {
        "p50_ms": float(np.percentile(arr, 50)),
        "p90_ms": float(np.percentile(arr, 90)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
        "n": len(values),
    }


async def bench_refine(
    settings: RefineSettings,
    catalog: list[Candidate],
    *,
    users: int,
    concurrency: int,
    budget_ms: float,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    import redis.asyncio as aioredis

    from serving.clients.embedded_redis import EmbeddedRedis
    from serving.refine import build_refiner

    rng = np.random.default_rng(0)
    n = settings.refine_candidates

    def state() -> tuple[list[Candidate], list[Candidate], list[Candidate]]:
        picked = rng.choice(len(catalog), settings.refine_history + 2 * n, replace=False)
        items = [catalog[i] for i in picked]
        h = settings.refine_history
        return items[:h], items[h : h + n], items[h + n :]

    async def timed(refiner: Any, **kwargs: Any) -> tuple[RefineOutcome, float]:
        began = time.perf_counter()
        outcome = await refiner.refine(model_version="bench", **kwargs)
        return outcome, (time.perf_counter() - began) * 1000.0

    with tempfile.TemporaryDirectory(prefix="intentrec-bench-") as tmp:
        server = EmbeddedRedis(Path(tmp), fsync="everysec")
        redis = aioredis.from_url(await asyncio.to_thread(server.start))
        refiner = build_refiner(settings, redis)
        if refiner is None:
            raise ValueError("no LLM configured: pass --llm URL or set INTENTREC_LLM_BASE_URL")
        cold, warm, cached, skipped, failed = [], [], [], [], 0
        try:
            history, candidates, _ = state()
            prompt = refine_prompt(settings, history, candidates[settings.refine_fixed_top :])
            prompt_tokens = await refiner.client.prompt_tokens(prompt.messages)  # type: ignore[attr-defined]
            for u in range(users):
                history, first, second = state()
                for candidates, bucket in ((first, cold), (second, warm), (second, cached)):
                    out, ms = await timed(
                        refiner, history=history, candidates=candidates, remaining_ms=60_000
                    )
                    if out.degraded:
                        failed += 1
                    else:
                        bucket.append(ms)
                out, ms = await timed(refiner, history=history, candidates=first, remaining_ms=1)
                skipped.append(ms)
                if progress:
                    progress(f"user {u + 1}/{users}")
            burst = await asyncio.gather(
                *(
                    timed(refiner, history=h, candidates=c, remaining_ms=budget_ms)
                    for h, c, _ in (state() for _ in range(concurrency))
                )
            )
            await refiner.drain(timeout_s=120)  # type: ignore[attr-defined]
        finally:
            await refiner.aclose()
            await redis.aclose()
            await asyncio.to_thread(server.stop)
    burst_ms = [ms for _, ms in burst]
    reasons: dict[str, int] = {}
    for out, _ in burst:
        key = out.degraded[0] if out.degraded else "refined"
        reasons[key] = reasons.get(key, 0) + 1
    cold_pct = _pct(cold)
    return {
        "llm_model": settings.llm_model,
        "llm_base_url": settings.llm_base_url,
        "candidates": n,
        "history": settings.refine_history,
        "title_chars": settings.refine_title_chars,
        "prompt_tokens": prompt_tokens,
        # prompt processing dominates a call: one output token
        "prompt_tokens_per_s": prompt_tokens / (cold_pct["p50_ms"] / 1000.0),
        "users": users,
        "cold": cold_pct,
        "warm_prefix": _pct(warm),
        "from_cache": _pct(cached),
        "skipped": _pct(skipped),
        "failed_calls": failed,
        "burst": {
            "concurrency": concurrency,
            "budget_ms": budget_ms,
            "within_budget_share": sum(ms <= budget_ms + SLACK_MS for ms in burst_ms)
            / max(len(burst_ms), 1),
            **_pct(burst_ms),
            "outcomes": reasons,
        },
    }
