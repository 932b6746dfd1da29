"""The refiner's handling of broken answers.

A fake LLM (httpx.MockTransport) stands in here on purpose: the real embedded server always
returns well-formed completions, so garbage bodies, error statuses and answers that name no
candidate cannot be provoked from it. Everything else is tested against the real server in
tests/e2e/refine/.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from serving.refine.breaker import BreakerState
from serving.refine.client import LLMClient
from serving.refine.contract import Candidate, Degraded
from serving.refine.settings import RefineSettings
from serving.refine.stage import LLMRefiner

CANDIDATES = [Candidate(i, str(i), f"Movie {i}", "", 1.0 / i) for i in range(1, 21)]
HISTORY = [Candidate(i, str(i), f"Seen {i}", "", 0.0) for i in range(100, 105)]


def refiner(handler: Callable[[dict], httpx.Response], **overrides: object) -> LLMRefiner:
    def route(request: httpx.Request) -> httpx.Response:
        return handler(json.loads(request.content))

    # All 20 candidates in the window unless a test says otherwise (the default is smaller).
    settings = RefineSettings(
        **{"llm_base_url": "http://fake/v1", "refine_candidates": len(CANDIDATES), **overrides}
    )
    client = LLMClient("http://fake/v1", "m", transport=httpx.MockTransport(route))
    return LLMRefiner(settings, client)


def logprobs_answer(tokens: dict[str, float]) -> httpx.Response:
    top = [{"token": t, "logprob": lp} for t, lp in tokens.items()]
    content = [{"token": top[0]["token"], "logprob": top[0]["logprob"], "top_logprobs": top}]
    return httpx.Response(200, json={"choices": [{"logprobs": {"content": content}}]})


async def run(r: LLMRefiner):
    try:
        return await r.refine(
            model_version="v", history=HISTORY, candidates=CANDIDATES, remaining_ms=5_000
        )
    finally:
        await r.aclose()


async def test_score_answer_with_labels_reorders_below_the_top() -> None:
    # Label C is the 8th candidate (id 8): with the LLM alone it moves to position 6.
    outcome = await run(
        refiner(lambda _: logprobs_answer({"C": -0.1, "A": -2.0}), refine_blend=1.0)
    )
    assert outcome.refined and outcome.degraded == []
    assert [c.item_id for c in outcome.candidates[:7]] == [1, 2, 3, 4, 5, 8, 6]


async def test_score_answer_without_any_label_is_invalid_output() -> None:
    r = refiner(lambda _: logprobs_answer({"The": -0.1, "Sure": -1.0}))
    outcome = await run(r)
    assert outcome.degraded == [Degraded.REFINE_INVALID_OUTPUT] and outcome.candidates == CANDIDATES
    assert r.breaker.state is BreakerState.CLOSED  # the server works; it is not its fault


async def test_labels_missing_from_the_answer_rank_last_and_count_as_repaired() -> None:
    # The 10 reordered candidates (ids 6..15) are labelled A..J; the answer names only H (id 13)
    # and B (id 7).
    r = refiner(lambda _: logprobs_answer({"H": -0.2, "B": -1.5}), refine_blend=1.0)
    outcome = await run(r)
    ids = [c.item_id for c in outcome.candidates]
    assert outcome.refined
    assert ids == [1, 2, 3, 4, 5, 13, 7, 6, 8, 9, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20]
    assert r.counters["repaired"] == 1


async def test_unreadable_bodies_and_error_statuses_are_errors_that_open_the_breaker() -> None:
    answers = iter(
        [
            httpx.Response(200, text="not json"),
            httpx.Response(200, json={"choices": [{"logprobs": None}]}),
            httpx.Response(500, text="boom"),
        ]
    )
    r = refiner(lambda _: next(answers), refine_breaker_failures=3)
    try:
        for _ in range(3):
            outcome = await r.refine(
                model_version="v", history=HISTORY, candidates=CANDIDATES, remaining_ms=5_000
            )
            assert outcome.degraded == [Degraded.REFINE_ERROR] and outcome.candidates == CANDIDATES
        assert r.breaker.state is BreakerState.OPEN
        outcome = await r.refine(
            model_version="v", history=HISTORY, candidates=CANDIDATES, remaining_ms=5_000
        )
        assert outcome.degraded == [Degraded.REFINE_BREAKER_OPEN]
    finally:
        await r.aclose()


async def test_score_request_asks_for_one_token_with_logprobs() -> None:
    seen: list[dict] = []

    def handler(body: dict) -> httpx.Response:
        seen.append(body)
        return logprobs_answer({"A": -0.5})

    await run(refiner(handler, refine_top_logprobs=20))
    assert seen[0]["max_tokens"] == 1 and seen[0]["logprobs"] is True
    assert seen[0]["top_logprobs"] == 20 and seen[0]["model"] == "m"


async def test_only_the_top_refine_candidates_are_reordered() -> None:
    r = refiner(lambda _: logprobs_answer({"E": -0.1}), refine_blend=1.0, refine_candidates=10)
    outcome = await run(r)
    ids = [c.item_id for c in outcome.candidates]
    assert outcome.refined
    assert ids[:6] == [1, 2, 3, 4, 5, 10]  # label E = the 5th below the top 5
    assert ids[10:] == list(range(11, 21))  # below the window: untouched
