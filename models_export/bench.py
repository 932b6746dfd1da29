"""Benchmarks behind `intentrec bench retrieval` and `intentrec bench encode`: pure measurement
functions returning plain dicts; the CLI prints them."""

from __future__ import annotations

import gc
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def synthetic_catalog(
    n_items: int, dim: int, users: int, intents: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Clustered item vectors and multi-intent user vectors, like trained embeddings have.

    About sqrt(N) topics of Zipf-distributed size; an item is its topic centre plus noise of the
    same scale, and each of a user's K intents is a topic centre plus noise. Returns items
    (N + 1, D) float32 (row 0 = padding) and users (U, K, D) float32.
    """
    rng = np.random.default_rng(seed)
    topics = max(8, int(math.sqrt(n_items)))
    centres = rng.standard_normal((topics, dim), dtype=np.float32)
    weights = 1.0 / np.arange(1, topics + 1) ** 0.8
    weights /= weights.sum()
    items = np.empty((n_items + 1, dim), dtype=np.float32)
    items[0] = 0.0
    chunk = 200_000  # bounded temporary memory at 1M items
    for start in range(1, n_items + 1, chunk):
        stop = min(n_items + 1, start + chunk)
        topic = rng.choice(topics, size=stop - start, p=weights)
        items[start:stop] = centres[topic] + rng.standard_normal(
            (stop - start, dim), dtype=np.float32
        )
    user_topics = rng.choice(topics, size=(users, intents), p=weights)
    queries = centres[user_topics] + rng.standard_normal((users, intents, dim), dtype=np.float32)
    return items, queries.astype(np.float32)


def _percentiles_ms(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered) * 1e3, p99 * 1e3


def _rss_bytes() -> int | None:
    try:
        import psutil
    except ImportError:
        return None
    return psutil.Process().memory_info().rss


def bench_retrieval_size(
    n_items: int,
    *,
    dim: int = 64,
    intents: int = 4,
    users: int = 1000,
    recall_users: int = 500,
    threads: int = 1,
    settings: Any = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Build the index the exporter would build for `n_items` and measure it.

    Tuning uses its own users; latency (one user = K intent queries + merge, one call each) and
    recall@100 against exact search are measured on fresh users.
    """
    import faiss

    from models_export.index import (
        RECALL_K,
        IndexSettings,
        build_flat,
        build_index,
        recall_at,
        search_intents,
        set_threads,
    )

    settings = settings or IndexSettings()
    items, queries = synthetic_catalog(n_items, dim, settings.tune_users + users, intents, seed)
    tune_queries, eval_queries = queries[: settings.tune_users], queries[settings.tune_users :]

    set_threads(2)  # build with every core; searches below use `threads`
    gc.collect()
    rss_before = _rss_bytes()
    started = time.perf_counter()
    built = build_index(items, tune_queries, settings)
    build_seconds = time.perf_counter() - started
    rss_after = _rss_bytes()
    index_bytes = int(faiss.serialize_index(built.index).nbytes)

    exact = build_flat(items)
    _, exact_ids = search_intents(exact, eval_queries[:recall_users], RECALL_K)
    del exact
    set_threads(threads)
    _, approx_ids = search_intents(built.index, eval_queries[:recall_users], RECALL_K)
    recall = recall_at(approx_ids, exact_ids)

    for user in eval_queries[:20]:  # warm caches and the thread pool
        search_intents(built.index, user[None], RECALL_K)
    timings = []
    for user in eval_queries:
        started = time.perf_counter()
        search_intents(built.index, user[None], RECALL_K)
        timings.append(time.perf_counter() - started)
    p50, p99 = _percentiles_ms(timings)
    return {
        "n_items": n_items,
        "dim": dim,
        "intents": intents,
        "kind": built.info.kind,
        "params": built.info.params,
        "build_s": round(build_seconds, 2),
        "index_mb": round(index_bytes / 2**20, 1),
        "rss_delta_mb": None
        if rss_before is None or rss_after is None
        else round((rss_after - rss_before) / 2**20, 1),
        "p50_ms": round(p50, 3),
        "p99_ms": round(p99, 3),
        "recall_at_100": round(recall, 4),
        "recall_at_100_tuning": round(built.info.recall_at_100, 4),
        "users_timed": len(timings),
        "threads": threads,
    }


def time_calls(fn: Callable[[], object], repeats: int, warmup: int) -> tuple[float, float]:
    """Median and p99 wall time of `fn` in milliseconds."""
    for _ in range(warmup):
        fn()
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - started)
    return _percentiles_ms(timings)
