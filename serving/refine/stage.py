"""The LLM refiner: reorders candidates below the fixed top within the request's deadline.

Protection, in the order a request meets it: the Redis cache, the budget check, the circuit
breaker, the concurrency cap (shed, never queue), then the call itself under the deadline. A call
that misses its deadline is not cancelled while fewer than `max_background` late calls run: it
finishes in the background and fills the cache, so the next request in the same state is served
at cache speed. Requests for a state whose call is already running wait on that call (single
flight) instead of starting another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from serving.refine.breaker import CircuitBreaker
from serving.refine.cache import RefineCache, cache_key
from serving.refine.client import LLMClient, LLMError
from serving.refine.contract import (
    Candidate,
    Degraded,
    RefineOutcome,
    RefinePolicy,
)
from serving.refine.lift import read_lift
from serving.refine.permutation import apply_order, blend, label_scores
from serving.refine.prompt import refine_prompt
from serving.refine.settings import RefineSettings

log = logging.getLogger(__name__)


class InvalidOutput(Exception):
    """The LLM answered, but no candidate label is among its likeliest first tokens."""


@dataclass(frozen=True, slots=True)
class Answer:
    positions: list[int]  # order of the reordered part (indices in encoder order)
    # some labels were not among the answer's top log-probabilities (they rank last)
    repaired: bool


async def ask_llm(
    client: LLMClient,
    settings: RefineSettings,
    history: Sequence[Candidate],
    tail: Sequence[Candidate],
) -> Answer:
    """One LLM call reordering `tail`; raises LLMError or InvalidOutput."""
    prompt = refine_prompt(settings, history, tail)
    logprobs = await client.score(prompt.messages, prompt.keys, settings.refine_top_logprobs)
    if not logprobs:
        raise InvalidOutput("no candidate label among the answer's top log-probabilities")
    scores = label_scores(logprobs, prompt.keys)
    return Answer(blend(scores, settings.refine_blend), repaired=len(logprobs) < len(tail))


class LLMRefiner:
    """The `Refiner` of the serving pipeline (see contract.py). One per process and event loop."""

    def __init__(
        self,
        settings: RefineSettings,
        client: LLMClient,
        cache: RefineCache | None = None,
        breaker: CircuitBreaker | None = None,
        lift_file: Path | None = None,
    ) -> None:
        """`lift_file`: the measured lift `refine=auto` goes by; None: no evidence, no refine."""
        self.settings = settings
        self.client = client
        self.cache = cache
        self.breaker = breaker or CircuitBreaker(
            settings.refine_breaker_failures, settings.refine_breaker_reset_s
        )
        self.lift = read_lift(lift_file, settings.llm_model) if lift_file else None
        self.counters: Counter[str] = Counter()  # outcomes, for metrics and the evaluation
        self._calls: dict[str, asyncio.Task[Answer]] = {}  # running LLM calls by cache key
        self._waiters: Counter[str] = Counter()
        self._late: set[asyncio.Task[Answer]] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # cache writes

    def wants(self, policy: RefinePolicy) -> bool:
        if policy is RefinePolicy.AUTO:
            return self.lift is not None and self.lift.refines
        return policy is RefinePolicy.ON

    @property
    def in_flight(self) -> int:
        return len(self._calls)

    async def refine(
        self,
        *,
        model_version: str,
        history: list[Candidate],
        candidates: list[Candidate],
        remaining_ms: float,
        user_id: str | None = None,
    ) -> RefineOutcome:
        started = time.perf_counter()
        deadline = started + (remaining_ms - self.settings.refine_safety_margin_ms) / 1000.0
        try:
            outcome = await self._refine(model_version, history, candidates, deadline, user_id)
        except Exception:  # the contract: never raise, degrade
            log.exception("refine failed unexpectedly")
            outcome = RefineOutcome(
                list(candidates), refined=False, degraded=[Degraded.REFINE_ERROR]
            )
        outcome.elapsed_ms = (time.perf_counter() - started) * 1000.0
        self.counters[_outcome_name(outcome)] += 1
        return outcome

    async def _refine(
        self,
        model_version: str,
        history: list[Candidate],
        candidates: list[Candidate],
        deadline: float,
        user_id: str | None,
    ) -> RefineOutcome:
        s = self.settings
        if len(candidates) > s.refine_candidates:  # only the top REFINE_CANDIDATES are reordered
            window, rest = candidates[: s.refine_candidates], candidates[s.refine_candidates :]
            outcome = await self._refine(model_version, history, window, deadline, user_id)
            outcome.candidates += rest
            return outcome
        fixed_top = s.refine_fixed_top
        tail = candidates[fixed_top:]
        if len(tail) < 2:
            return RefineOutcome(list(candidates), refined=False)

        def degraded(reason: Degraded) -> RefineOutcome:
            return RefineOutcome(list(candidates), refined=False, degraded=[reason])

        key = cache_key(
            model_version=model_version,
            llm_model=s.llm_model,
            blend=s.refine_blend,
            fixed_top=fixed_top,
            history_ids=[h.item_id for h in history[-s.refine_history :]]
            if s.refine_history
            else [],
            candidate_ids=[c.item_id for c in candidates],
        )
        if self.cache is not None:
            left = deadline - time.perf_counter()
            cached = await self.cache.get(key, min(left, s.refine_cache_timeout_ms / 1000.0))
            reordered = _from_cached(candidates, fixed_top, cached)
            if reordered is not None:
                return RefineOutcome(reordered, refined=True, from_cache=True)

        call = self._calls.get(key)
        if call is None:
            if (deadline - time.perf_counter()) * 1000.0 < s.refine_min_call_ms:
                return degraded(Degraded.REFINE_SKIPPED_BUDGET)
            if len(self._calls) >= s.refine_max_in_flight:
                return degraded(Degraded.REFINE_SHED)
            if not self.breaker.allow():
                return degraded(Degraded.REFINE_BREAKER_OPEN)
            call = self._start_call(key, history, tail, candidates, user_id)

        self._waiters[key] += 1
        try:
            # asyncio.wait returns at the deadline without cancelling (and waiting for) the call.
            await asyncio.wait({call}, timeout=max(0.0, deadline - time.perf_counter()))
            if not call.done():
                return degraded(Degraded.REFINE_TIMEOUT)
            answer = call.result()
        except asyncio.CancelledError:
            if call.cancelled() and not _cancelling():
                # The call was cancelled by shutdown, not this request.
                return degraded(Degraded.REFINE_ERROR)
            raise
        except LLMError:
            return degraded(Degraded.REFINE_ERROR)
        except InvalidOutput:
            return degraded(Degraded.REFINE_INVALID_OUTPUT)
        finally:
            self._waiters[key] -= 1
            if self._waiters[key] <= 0:
                del self._waiters[key]
                if not call.done():
                    self._let_finish_or_cancel(call)
        return RefineOutcome(apply_order(candidates, fixed_top, answer.positions), refined=True)

    def _start_call(
        self,
        key: str,
        history: list[Candidate],
        tail: list[Candidate],
        candidates: list[Candidate],
        user_id: str | None,
    ) -> asyncio.Task[Answer]:
        async def run() -> Answer:
            try:
                async with asyncio.timeout(self.settings.refine_call_timeout_s):
                    answer = await ask_llm(self.client, self.settings, history, tail)
            except (LLMError, TimeoutError) as exc:
                self.breaker.record_failure()
                raise LLMError(str(exc) or type(exc).__name__) from exc
            except InvalidOutput:
                self.breaker.record_success()  # the server works; the model answered badly
                raise
            except BaseException:  # cancelled, or a bug: neither says the server is down
                self.breaker.release()
                raise
            self.breaker.record_success()
            if answer.repaired:
                self.counters["repaired"] += 1
            if self.cache is not None:
                order = apply_order(candidates, self.settings.refine_fixed_top, answer.positions)
                self._spawn(self.cache.set(key, [c.item_id for c in order], user_id))
            return answer

        task = asyncio.create_task(run())
        self._calls[key] = task
        task.add_done_callback(lambda t: self._call_done(key, t))
        return task

    def _call_done(self, key: str, task: asyncio.Task[Answer]) -> None:
        if self._calls.get(key) is task:
            del self._calls[key]
        self._late.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved here so that late failures do not warn

    def _let_finish_or_cancel(self, call: asyncio.Task[Answer]) -> None:
        if call in self._late:
            return
        if len(self._late) < self.settings.refine_max_background:
            self._late.add(call)
        else:
            call.cancel()

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout_s: float) -> None:
        """Wait for late calls and cache writes (tests and the offline evaluation use this).

        A call that finishes spawns its cache write, so one pass over what was pending is not
        enough: loop until nothing is left.
        """
        deadline = time.perf_counter() + timeout_s
        while pending := [*self._calls.values(), *self._tasks]:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            await asyncio.wait(pending, timeout=left)

    async def aclose(self) -> None:
        for task in [*self._calls.values(), *self._tasks]:
            task.cancel()
        await asyncio.gather(*self._calls.values(), *self._tasks, return_exceptions=True)
        await self.client.aclose()


def _cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _outcome_name(outcome: RefineOutcome) -> str:
    if outcome.degraded:
        return outcome.degraded[0]
    if outcome.from_cache:
        return "cache_hit"
    return "refined" if outcome.refined else "unchanged"


def _from_cached(
    candidates: list[Candidate], fixed_top: int, cached: list[int] | None
) -> list[Candidate] | None:
    """The cached order applied to these candidates, or None when it does not fit them."""
    if cached is None or len(cached) != len(candidates):
        return None
    tail_pos = {c.item_id: i for i, c in enumerate(candidates[fixed_top:])}
    head_ok = [c.item_id for c in candidates[:fixed_top]] == cached[:fixed_top]
    positions = [tail_pos.get(i, -1) for i in cached[fixed_top:]]
    if not head_ok or sorted(positions) != list(range(len(tail_pos))):
        return None
    return apply_order(candidates, fixed_top, positions)
