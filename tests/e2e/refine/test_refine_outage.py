"""The LLM server goes away and comes back: degrade, open the breaker, close it again.

This stops and restarts the session's real server (about a minute), so it runs after the others.
"""

from __future__ import annotations

import time

import pytest

from serving.refine.breaker import BreakerState
from serving.refine.contract import Candidate, Degraded
from serving.refine.server import EmbeddedLLMServer
from tests.e2e.refine.speed import LLMSpeed

pytestmark = [pytest.mark.llm, pytest.mark.slow]


async def test_stopped_server_gives_refine_error_opens_the_breaker_and_closes_on_return(
    llm_server: EmbeddedLLMServer, llm_speed: LLMSpeed, make_refiner, catalog: list[Candidate]
) -> None:
    # The first call after a restart does the server's one-off start-up work again, and that
    # call is the probe that closes the breaker: it must not time out.
    probe_ms = llm_speed.first_call_ms + llm_speed.patient_ms
    refiner = make_refiner(
        refine_breaker_failures=2, refine_breaker_reset_s=1.0, refine_call_timeout_s=probe_ms / 1000
    )

    def request(start: int) -> dict:
        return {
            "model_version": "v1",
            "history": catalog[start : start + 5],
            "candidates": catalog[start + 5 : start + 25],
            "remaining_ms": 2_000,
        }

    llm_server.stop()
    try:
        for start in (700, 740):
            began = time.perf_counter()
            outcome = await refiner.refine(**request(start))
            assert outcome.degraded == [Degraded.REFINE_ERROR]
            assert outcome.candidates == request(start)["candidates"]
            assert (time.perf_counter() - began) * 1000 <= 2_000 + 5
        assert refiner.breaker.state is BreakerState.OPEN
        outcome = await refiner.refine(**request(780))
        assert outcome.degraded == [Degraded.REFINE_BREAKER_OPEN]
    finally:
        llm_server.start()
        llm_server.wait_ready()

    # The reset period has long passed: the next call is the probe, and it succeeds.
    outcome = await refiner.refine(**{**request(820), "remaining_ms": probe_ms})
    assert outcome.refined and outcome.degraded == []
    assert refiner.breaker.state is BreakerState.CLOSED
