"""Micro-batching with the real encoder and index: grouped calls give the single-call answers."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from serving.batcher import MicroBatcher
from serving.metrics import Metrics
from serving.model import load_model
from serving.pipeline.history import encoder_input
from serving.settings import Settings


@pytest.fixture(scope="module", params=["sasrec", "disen"])
def model(request):
    name = "serving_bundles" if request.param == "sasrec" else "serving_disen_bundle"
    return load_model(request.getfixturevalue(name), Settings())


def _rows(model, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [
        encoder_input(rng.integers(1, model.n_items + 1, size=rng.integers(1, 40)), model.max_len)
        for _ in range(n)
    ]


async def test_concurrent_requests_share_calls_and_get_their_own_answers(model) -> None:
    metrics = Metrics()
    batcher = MicroBatcher(max_size=64, max_wait_ms=0.0, metrics=metrics)
    batcher.start()
    try:
        rows = _rows(model, 32)
        fetches = [5 + i % 20 for i in range(32)]
        futures = [batcher.submit(model, row, f) for row, f in zip(rows, fetches, strict=True)]
        results = await asyncio.gather(*futures)
    finally:
        await batcher.close()
    for row, fetch, result in zip(rows, fetches, results, strict=True):
        encoded = model.encode_retrieve(row[None, :], fetch)
        scores, ids = encoded.scores, encoded.ids
        assert result.ids.tolist() == ids[0].tolist()
        np.testing.assert_allclose(result.scores, scores[0], rtol=1e-5, atol=1e-5)
        # each request gets its own row's vectors and weights back (explanations use them)
        np.testing.assert_allclose(result.user_vectors, encoded.user_vectors[0], atol=1e-5)
        np.testing.assert_allclose(result.weights, encoded.weights[0], atol=1e-5)
    batches = metrics.registry.get_sample_value("intentrec_encoder_batch_size_count")
    assert batches < 32  # grouped, not one call per request
    assert max(r.batch_size for r in results) > 1


async def test_a_cancelled_request_is_skipped_and_others_complete(model) -> None:
    batcher = MicroBatcher(max_size=8, max_wait_ms=0.0, metrics=Metrics())
    batcher.start()
    try:
        rows = _rows(model, 3)
        first, dropped, last = (batcher.submit(model, row, 10) for row in rows)
        dropped.cancel()  # what a request's deadline does
        done = await asyncio.gather(first, last)
    finally:
        await batcher.close()
    assert [len(r.ids) for r in done] == [10, 10]
    assert dropped.cancelled()


async def test_a_lone_request_on_a_cheap_model_runs_inline(model) -> None:
    batcher = MicroBatcher(max_size=8, max_wait_ms=0.0, metrics=Metrics(), inline_max_ms=1e9)
    # Not started: only the inline path can answer.
    future = batcher.submit(model, _rows(model, 1)[0], 10, alone=True)
    assert future.done()
    assert len(future.result().ids) == 10
    await batcher.close()
