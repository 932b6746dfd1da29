"""FAISS item index at export: build and tune it, measure its recall, write it. Torch-free.

Small catalogs get an exact Flat index; above `flat_max_items` an IVF (or HNSW) index whose
search parameter is tuned here to reach `target_recall` of exact top-100, recorded in the
manifest's `IndexInfo` for serving to apply (models_export/index.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import faiss
import numpy as np
from pydantic_settings import BaseSettings, SettingsConfigDict

from models_export.bundle import IndexInfo
from models_export.index import apply_params, is_on_gpu, search_intents

RECALL_K = 100


class IndexSettings(BaseSettings):
    """How the exporter builds the index (env vars `INTENTREC_INDEX_*`)."""

    model_config = SettingsConfigDict(env_prefix="INTENTREC_INDEX_")

    flat_max_items: int = 100_000  # exact search stays within the latency budget up to here
    kind: Literal["ivf", "hnsw"] = "ivf"  # approximate kind above flat_max_items
    target_recall: float = 0.95  # merged per-user recall@100 against exact search
    recall_margin: float = 0.01  # tune a little above target: fresh users scatter around it
    nlist: int | None = None  # IVF lists; None: about 4 sqrt(N), a power of two
    train_points_per_list: int = 64  # k-means sample; more costs build time for little recall
    kmeans_iterations: int = 10
    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    tune_users: int = 512  # users (K queries each) measured while tuning


@dataclass(frozen=True)
class BuiltIndex:
    index: faiss.Index
    info: IndexInfo


def _ids_and_vectors(item_vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    vectors = np.ascontiguousarray(item_vectors[1:], dtype=np.float32)
    ids = np.arange(1, len(item_vectors), dtype=np.int64)
    return ids, vectors


def build_flat(item_vectors: np.ndarray) -> faiss.Index:
    """Exact inner-product index over rows 1..N, ids = internal ids."""
    ids, vectors = _ids_and_vectors(item_vectors)
    index = faiss.IndexIDMap(faiss.IndexFlatIP(vectors.shape[1]))
    index.add_with_ids(vectors, ids)
    return index


def default_nlist(n_items: int) -> int:
    return max(16, 2 ** round(math.log2(4 * math.sqrt(n_items))))


def _build_ivf(item_vectors: np.ndarray, settings: IndexSettings) -> faiss.Index:
    ids, vectors = _ids_and_vectors(item_vectors)
    dim = vectors.shape[1]
    nlist = min(settings.nlist or default_nlist(len(vectors)), max(1, len(vectors) // 39))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = settings.kmeans_iterations
    index.cp.max_points_per_centroid = settings.train_points_per_list
    sample = min(len(vectors), nlist * settings.train_points_per_list)
    rows = np.random.default_rng(0).choice(len(vectors), size=sample, replace=False)
    index.train(vectors[np.sort(rows)])
    index.add_with_ids(vectors, ids)
    return index


def _build_hnsw(item_vectors: np.ndarray, settings: IndexSettings) -> faiss.Index:
    ids, vectors = _ids_and_vectors(item_vectors)
    inner = faiss.IndexHNSWFlat(vectors.shape[1], settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    inner.hnsw.efConstruction = settings.hnsw_ef_construction
    index = faiss.IndexIDMap(inner)
    index.add_with_ids(vectors, ids)
    return index


def recall_at(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Mean share of each row's exact ids (ignoring -1) that the approximate row also holds."""
    hits, total = 0, 0
    for approx, exact in zip(approx_ids, exact_ids, strict=True):
        truth = exact[exact >= 0]
        hits += np.isin(truth, approx).sum()
        total += len(truth)
    return float(hits / max(total, 1))


def measure_recall(
    index: faiss.Index, exact_ids: np.ndarray, queries: np.ndarray, k: int = RECALL_K
) -> float:
    _, approx = search_intents(index, queries, k)
    return recall_at(approx, exact_ids)


def _tune(
    index: faiss.Index, kind: str, queries: np.ndarray, exact_ids: np.ndarray, target: float
) -> tuple[dict, float]:
    """Smallest search parameter reaching `target` recall: doubling, then bisection."""
    name, upper = (
        ("nprobe", faiss.extract_index_ivf(index).nlist)
        if kind == "ivf"
        else (
            "ef_search",
            4096,
        )
    )

    def recall(value: int) -> float:
        apply_params(index, kind, {name: value})
        return measure_recall(index, exact_ids, queries)

    low, value = 0, 1 if kind == "ivf" else 16
    measured = {value: recall(value)}
    while measured[value] < target and value < upper:
        low, value = value, min(upper, value * 2)
        measured[value] = recall(value)
    high = value
    while measured[high] >= target and high - low > 1 and high > 1:
        middle = (low + high) // 2
        if middle <= low:
            break
        measured[middle] = recall(middle)
        if measured[middle] >= target:
            high = middle
        else:
            low = middle
    apply_params(index, kind, {name: high})
    return {name: high}, measured[high]


def tuning_queries(item_vectors: np.ndarray, users: int, seed: int = 0) -> np.ndarray:
    """Stand-in queries when no user vectors are given: random item vectors, (users, 1, D)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(1, len(item_vectors), size=users)
    return np.ascontiguousarray(item_vectors[rows][:, None, :], dtype=np.float32)


def build_index(
    item_vectors: np.ndarray,
    queries: np.ndarray | None = None,
    settings: IndexSettings | None = None,
) -> BuiltIndex:
    """Build the inner-product index for (N + 1, D) item vectors (row 0 = padding).

    `queries` (Q, K, D): real user vectors to tune and measure recall on (e.g. the encoder's
    outputs for the checkpoint's sample sequences); random item vectors stand in when absent.
    """
    settings = settings or IndexSettings()
    item_vectors = np.asarray(item_vectors, dtype=np.float32)
    n_items = len(item_vectors) - 1
    if n_items < 1:
        raise ValueError("item_vectors must hold the padding row and at least one item")
    if queries is None:
        queries = tuning_queries(item_vectors, settings.tune_users)
    queries = np.asarray(queries, dtype=np.float32)
    if queries.ndim == 2:
        queries = queries[:, None, :]
    queries = queries[: settings.tune_users]

    started = time.perf_counter()
    flat = build_flat(item_vectors)
    if n_items <= settings.flat_max_items:
        return BuiltIndex(
            flat,
            IndexInfo(
                kind="flat",
                params={},
                recall_at_100=1.0,
                n_items=n_items,
                build_seconds=time.perf_counter() - started,
            ),
        )
    _, exact_ids = search_intents(flat, queries, RECALL_K)
    del flat
    kind = settings.kind
    index = (
        _build_ivf(item_vectors, settings) if kind == "ivf" else _build_hnsw(item_vectors, settings)
    )
    params, recall = _tune(
        index, kind, queries, exact_ids, min(1.0, settings.target_recall + settings.recall_margin)
    )
    if kind == "ivf":
        params["nlist"] = faiss.extract_index_ivf(index).nlist
    return BuiltIndex(
        index,
        IndexInfo(
            kind=kind,
            params=params,
            recall_at_100=recall,
            n_items=n_items,
            build_seconds=time.perf_counter() - started,
        ),
    )


def write_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(faiss.index_gpu_to_cpu(index) if is_on_gpu(index) else index, str(path))
