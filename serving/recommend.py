"""The recommend use case: history -> encode + retrieve -> filter -> refine -> top-k.

Every awaited stage is bounded by what is left of the request's budget; a stage that cannot
finish in time is skipped and named in `degraded`, and the answer falls back to what is there.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass

import numpy as np

from serving.batcher import MicroBatcher
from serving.clients.history_store import HistoryStore, StoreUnavailable
from serving.errors import ServiceError, invalid_field
from serving.holder import ModelHolder
from serving.metrics import Metrics
from serving.model import EncodeResult, ServedModel
from serving.pipeline.deadline import Deadline
from serving.pipeline.explain import explain_items
from serving.pipeline.history import History, encoder_input, merge_history
from serving.pipeline.ranking import fetch_size, filter_candidates, popularity_fallback
from serving.refine.contract import Candidate, Degraded, RefinePolicy, Refiner
from serving.schemas import RecommendRequest, RecommendResponse
from serving.settings import Settings

# Redis is skipped when less than this is left: the rest of the pipeline needs the time more.
_MIN_HISTORY_MS = 1.0


@dataclass(slots=True)
class Recommender:
    settings: Settings
    metrics: Metrics
    holder: ModelHolder
    batcher: MicroBatcher
    store: HistoryStore | None
    refiner: Refiner | None = None
    in_flight: int = 0

    async def recommend(
        self, req: RecommendRequest, received_at: float | None = None
    ) -> RecommendResponse:
        """`received_at` (perf_counter): when the server got the request; the budget counts
        from there, so time spent reading and validating the body is part of it."""
        if not self.holder.loaded:
            raise ServiceError(503, "not_ready", "no bundle loaded yet")
        model = self.holder.current  # kept for the whole request: a reload cannot change it
        self.in_flight += 1
        try:
            return await self._recommend(req, model, received_at)
        finally:
            self.in_flight -= 1

    async def _recommend(
        self, req: RecommendRequest, model: ServedModel, received_at: float | None
    ) -> RecommendResponse:
        settings = self.settings
        if len(req.history) > settings.history_cap:
            raise invalid_field(
                "history",
                f"{len(req.history)} items, at most {settings.history_cap} (INTENTREC_HISTORY_CAP)",
            )
        deadline = Deadline(req.budget_ms or settings.default_budget_ms)
        if received_at is not None:
            deadline.started = received_at
        degraded: list[Degraded] = []

        stored = await self._stored_history(req.user_id, deadline, degraded)
        history = merge_history(stored, req.history, model.known)
        excluded: set[int] = set(history.internal_ids.tolist()) if req.exclude_seen else set()
        excluded.update(model.known[e] for e in req.exclude if e in model.known)

        refine_wanted = self._refine_wanted(req.refine, degraded) and not history.empty
        needed = max(req.k, settings.refine.refine_candidates) if refine_wanted else req.k

        ids = scores = None
        encoded: EncodeResult | None = None  # the encoder's own output, for explanations
        if history.empty:
            if Degraded.HISTORY_STORE_UNAVAILABLE not in degraded:
                degraded.append(Degraded.COLD_START)
        else:
            found = await self._retrieve(model, history, needed, excluded, deadline, degraded)
            if found is not None:
                ids, scores, encoded = found
        if ids is None:
            with deadline.stage("fallback"):
                ids, scores = popularity_fallback(
                    model.popular_order, model.popularity, excluded, req.k
                )
            refine_wanted = False

        refined = from_cache = False
        encoder_order = ids
        if refine_wanted and self.refiner is not None:
            ids, scores, refined, from_cache = await self._refine(
                model, history, ids, scores, deadline, degraded, req.user_id
            )

        # Plain dicts, validated into RecommendedItems by the one RecommendResponse call below:
        # two thirds of the cost of building each item's model on its own.
        items = [
            {"item_id": model.external_ids[i], "score": s, "rank": r + 1, "title": model.titles[i]}
            for r, (i, s) in enumerate(
                zip(ids[: req.k].tolist(), scores[: req.k].tolist(), strict=True)
            )
        ]
        if req.explain:
            with deadline.stage("explain"):
                shown = ids[: req.k].tolist()
                before = (
                    {int(i): rank + 1 for rank, i in enumerate(encoder_order.tolist())}
                    if refined
                    else None
                )
                for item, reason in zip(
                    items,
                    self._explain(model, history, shown, encoded, before, degraded),
                    strict=True,
                ):
                    item["explanation"] = reason
        timings = deadline.finish()
        # Counted before the answer leaves, so a scrape after a response always includes it.
        self._observe(timings, degraded)
        return RecommendResponse(
            items=items,
            model_version=model.version,
            refined=refined,
            refine_from_cache=from_cache,
            degraded=degraded,
            unknown_history=history.unknown,
            timings_ms=timings,
            request_id=uuid.uuid4().hex,
        )

    @staticmethod
    def _explain(
        model: ServedModel,
        history: History,
        shown: list[int],
        encoded: EncodeResult | None,
        before_refine: dict[int, int] | None,
        degraded: list[Degraded],
    ) -> list[dict[str, object]]:
        """Plain dicts of `Explanation`, one per shown item (validated with the answer), from
        the vectors and weights of the request's own encoder call."""
        if encoded is None or encoded.weights is None:
            if encoded is not None:
                degraded.append(Degraded.EXPLAIN_UNAVAILABLE)
            source = "popularity" if encoded is None else "model"
            blank = {"source": source, "intent": None, "because": [], "rank_before_refine": None}
            return [blank] * len(shown)
        row = encoder_input(history.internal_ids, model.max_len)
        reasons = explain_items(
            model.item_vectors(shown), encoded.user_vectors, encoded.weights, row
        )
        return [
            {
                "source": "model",
                "intent": reason.intent,
                "because": [
                    {"item_id": model.external_ids[i], "title": model.titles[i]}
                    for i in reason.because
                ],
                "rank_before_refine": None if before_refine is None else before_refine[item],
            }
            for item, reason in zip(shown, reasons, strict=True)
        ]

    async def _stored_history(
        self, user_id: str | None, deadline: Deadline, degraded: list[Degraded]
    ) -> list[str]:
        if user_id is None or self.store is None:
            return []
        remaining = deadline.remaining_ms() - _MIN_HISTORY_MS
        if remaining <= 0:
            degraded.append(Degraded.HISTORY_SKIPPED_BUDGET)
            return []
        with deadline.stage("history"):
            try:
                return await self.store.recent(user_id, self.store.max_len, timeout_ms=remaining)
            except StoreUnavailable:
                degraded.append(Degraded.HISTORY_STORE_UNAVAILABLE)
                return []

    def _refine_wanted(self, policy: RefinePolicy, degraded: list[Degraded]) -> bool:
        if policy == RefinePolicy.OFF:
            return False
        if self.refiner is None:
            if policy == RefinePolicy.ON:
                degraded.append(Degraded.REFINE_UNAVAILABLE)
            return False
        return self.refiner.wants(policy)

    async def _retrieve(
        self,
        model: ServedModel,
        history: History,
        needed: int,
        excluded: set[int],
        deadline: Deadline,
        degraded: list[Degraded],
    ) -> tuple[np.ndarray, np.ndarray, EncodeResult] | None:
        remaining = deadline.remaining_ms()
        if remaining <= 0:
            degraded.append(Degraded.ENCODE_SKIPPED_BUDGET)
            return None
        row = encoder_input(history.internal_ids, model.max_len)
        fetch = fetch_size(needed, len(excluded), model.n_items)
        with deadline.stage("queue"):
            future = self.batcher.submit(model, row, fetch, alone=self.in_flight == 1)
            if future.done():  # ran inline: no timer to arm (5 us)
                result = future.result()
            else:
                try:
                    async with asyncio.timeout(remaining / 1000.0):
                        result = await future
                except TimeoutError:
                    degraded.append(Degraded.ENCODE_SKIPPED_BUDGET)
                    return None
        # The batch's compute is reported per stage; "queue" keeps only the waiting (and the
        # hand-offs to and from the worker thread).
        queued = deadline.timings_ms["queue"] - result.encode_ms - result.retrieve_ms
        deadline.timings_ms["queue"] = max(0.0, queued)
        deadline.timings_ms["encode"] = result.encode_ms
        deadline.timings_ms["retrieve"] = result.retrieve_ms
        with deadline.stage("filter"):
            ids, scores = filter_candidates(result.ids, result.scores, excluded)
        return ids, scores, result

    async def _refine(
        self,
        model: ServedModel,
        history: History,
        ids: np.ndarray,
        scores: np.ndarray,
        deadline: Deadline,
        degraded: list[Degraded],
        user_id: str | None,
    ) -> tuple[np.ndarray, np.ndarray, bool, bool]:
        settings = self.settings.refine
        remaining = deadline.remaining_ms()
        if remaining < settings.refine_min_ms:
            degraded.append(Degraded.REFINE_SKIPPED_BUDGET)
            self.metrics.refine.labels(outcome=Degraded.REFINE_SKIPPED_BUDGET).inc()
            return ids, scores, False, False
        n = min(len(ids), settings.refine_candidates)
        candidates = [
            self._candidate(model, int(i), float(s))
            for i, s in zip(ids[:n], scores[:n], strict=True)
        ]
        recent = history.internal_ids[-model.max_len :].tolist()
        past = [self._candidate(model, i, 0.0) for i in recent]
        with deadline.stage("refine"):
            try:
                # The refiner keeps its own deadline; this bound only guards against a bug there.
                async with asyncio.timeout((remaining + 2.0) / 1000.0):
                    outcome = await self.refiner.refine(
                        model_version=model.version,
                        history=past,
                        candidates=candidates,
                        remaining_ms=remaining,
                        user_id=user_id,
                    )
            except TimeoutError:
                outcome = None
                reason = Degraded.REFINE_TIMEOUT
            except Exception:
                outcome = None
                reason = Degraded.REFINE_ERROR
        if outcome is None:
            degraded.append(reason)
            self.metrics.refine.labels(outcome=reason).inc()
            return ids, scores, False, False
        degraded.extend(r for r in outcome.degraded if r not in degraded)
        outcome_label = (
            "cached" if outcome.from_cache else "refined" if outcome.refined else "not_refined"
        )
        self.metrics.refine.labels(outcome=outcome_label).inc()
        for reason in outcome.degraded:
            self.metrics.refine.labels(outcome=reason).inc()
        order = [c.item_id for c in outcome.candidates]
        new_scores = {c.item_id: c.score for c in outcome.candidates}
        ids = np.concatenate([np.asarray(order, dtype=np.int64), ids[n:]])
        scores = np.concatenate(
            [np.asarray([new_scores[i] for i in order], dtype=np.float32), scores[n:]]
        )
        return ids, scores, outcome.refined, outcome.from_cache

    @staticmethod
    def _candidate(model: ServedModel, item: int, score: float) -> Candidate:
        return Candidate(
            item_id=item,
            external_id=model.external_ids[item],
            title=model.titles[item],
            text=model.texts[item],
            score=score,
        )

    def _observe(self, timings: dict[str, float], degraded: list[Degraded]) -> None:
        metrics = self.metrics
        metrics.observe_timings(timings)
        metrics.count_request("recommend", "degraded" if degraded else "ok")
        for reason in degraded:
            metrics.count_degraded(reason)
