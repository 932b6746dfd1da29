"""Benchmarks behind `intentrec bench retrieval` and `intentrec bench encode`: pure measurement
functions returning plain dicts; the CLI prints them."""

from __future__ import annotations

import gc
import math
import os
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

    from models_export.index import is_on_gpu, search_intents, set_threads
    from models_export.index_build import (
        RECALL_K,
        IndexSettings,
        build_flat,
        build_index,
        recall_at,
    )

    settings = settings or IndexSettings()
    items, queries = synthetic_catalog(n_items, dim, settings.tune_users + users, intents, seed)
    tune_queries, eval_queries = queries[: settings.tune_users], queries[settings.tune_users :]

    set_threads(os.cpu_count() or 1)  # build with every core; searches below use `threads`
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
        "index_device": "cuda" if is_on_gpu(built.index) else "cpu",
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


def bench_encode_arch(
    arch: str,
    *,
    batches: tuple[int, ...] = (1, 64),
    seq_len: int = 50,
    n_items: int = 10_000,
    dim: int = 64,
    layers: int = 2,
    intents: int = 4,
    threads: int = 1,
    repeats: int = 200,
    workdir: Any = None,
    device: str = "cpu",
) -> list[dict[str, Any]]:
    """torch eager vs ONNX Runtime (the stored, optimised graph) on one encoder with random
    weights (latency does not depend on the weights). Both get `threads` intra-op threads.
    `device="cuda"` also times ONNX Runtime's CUDA provider (refused when it does not load)."""
    import tempfile
    from pathlib import Path

    import torch

    from models_export.onnx_export import (
        INPUT_NAME,
        OUTPUT_NAME,
        WEIGHTS_NAME,
        export_onnx,
        optimize_onnx,
    )
    from models_export.verify import open_encoder
    from training.models import build_model

    config: dict[str, Any] = {
        "arch": arch,
        "n_items": n_items,
        "dim": dim,
        "layers": layers,
        "max_len": seq_len,
    }
    if arch == "disen":
        config["intents"] = intents
    model = build_model(config).eval()
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        raw, optimised = Path(tmp) / "raw.onnx", Path(tmp) / "encoder.onnx"
        export_onnx(model, raw)
        optimize_onnx(raw, optimised)
        session = open_encoder(optimised, threads=threads)
        # the graph as it was before explanations: what the weights output costs when not asked
        plain_raw, plain = Path(tmp) / "plain.raw.onnx", Path(tmp) / "plain.onnx"
        export_onnx(model, plain_raw, with_weights=False)
        optimize_onnx(plain_raw, plain)
        without_weights = open_encoder(plain, threads=threads)
        cuda = None
        if device == "cuda":
            cuda = open_encoder(optimised, providers=["CUDAExecutionProvider"])
            if cuda.get_providers()[0] != "CUDAExecutionProvider":
                raise RuntimeError(
                    f"ONNX Runtime did not load its CUDA provider (loaded {cuda.get_providers()})"
                )

    rows = []
    rng = np.random.default_rng(0)
    for batch in batches:
        item_seq = rng.integers(1, n_items + 1, size=(batch, seq_len), dtype=np.int64)
        tensor = torch.from_numpy(item_seq)
        runs = max(20, repeats if batch == 1 else repeats // 4)

        def run_torch(tensor: Any = tensor) -> object:
            with torch.inference_mode():
                return model.encode(tensor)

        def run_ort(item_seq: np.ndarray = item_seq) -> object:
            return session.run([OUTPUT_NAME], {INPUT_NAME: item_seq})

        def run_explain(item_seq: np.ndarray = item_seq) -> object:
            return session.run([OUTPUT_NAME, WEIGHTS_NAME], {INPUT_NAME: item_seq})

        def run_without_weights(item_seq: np.ndarray = item_seq) -> object:
            return without_weights.run([OUTPUT_NAME], {INPUT_NAME: item_seq})

        torch_p50, torch_p99 = time_calls(run_torch, runs, warmup=10)
        # alternated in rounds, so that the three graphs see the same machine
        ort, explain, plain_graph = [], [], []
        for _ in range(4):
            ort.append(time_calls(run_ort, runs // 4 + 1, warmup=5)[0])
            explain.append(time_calls(run_explain, runs // 4 + 1, warmup=5)[0])
            plain_graph.append(time_calls(run_without_weights, runs // 4 + 1, warmup=5)[0])
        ort_p50, ort_p99 = time_calls(run_ort, runs, warmup=10)
        on_gpu: dict[str, Any] = {}
        if cuda is not None:

            def run_cuda(item_seq: np.ndarray = item_seq) -> object:
                return cuda.run([OUTPUT_NAME], {INPUT_NAME: item_seq})

            cuda_p50, cuda_p99 = time_calls(run_cuda, runs, warmup=10)
            on_gpu = {
                "ort_cuda_p50_ms": round(cuda_p50, 3),
                "ort_cuda_p99_ms": round(cuda_p99, 3),
                "cuda_speedup_vs_cpu_ort_p50": round(ort_p50 / cuda_p50, 2),
            }
        rows.append(
            {
                "arch": arch,
                "batch": batch,
                "seq": seq_len,
                "torch_p50_ms": round(torch_p50, 3),
                "torch_p99_ms": round(torch_p99, 3),
                "ort_p50_ms": round(ort_p50, 3),
                "ort_p99_ms": round(ort_p99, 3),
                "speedup_p50": round(torch_p50 / ort_p50, 2),
                # medians of 4 alternated rounds: vectors only, vectors + weights (explain),
                # and vectors from a graph without the weights output
                "ort_vectors_p50_ms": round(float(np.median(ort)), 3),
                "ort_explain_p50_ms": round(float(np.median(explain)), 3),
                "ort_graph_without_weights_p50_ms": round(float(np.median(plain_graph)), 3),
                "runs": runs,
                "threads": threads,
                "torch_device": str(next(model.parameters()).device),
                "ort_providers": session.get_providers(),
                **on_gpu,
            }
        )
    return rows
