"""FAISS index against numpy brute force (torch-free)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from models_export.bench import synthetic_catalog
from models_export.bundle import read_index
from models_export.index import merge_by_max, search_intents, to_device
from models_export.index_build import (
    IndexSettings,
    build_flat,
    build_index,
    recall_at,
    write_index,
)


def brute_force(items: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact max-over-intents scoring of rows 1..N: (B, K, D) -> top-k scores and ids."""
    scores = (queries @ items.T).max(axis=1)
    scores[:, 0] = -np.inf  # the padding row is never an item
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, ids, axis=1), ids


@pytest.fixture(scope="module")
def catalog() -> tuple[np.ndarray, np.ndarray]:
    return synthetic_catalog(5_000, 16, users=300, intents=3, seed=1)


def test_flat_search_intents_equals_brute_force(catalog) -> None:
    items, queries = catalog
    scores, ids = search_intents(build_flat(items), queries, 20)
    want_scores, want_ids = brute_force(items, queries, 20)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)
    assert (ids > 0).all(), "the padding row must never be returned"


def test_two_dimensional_queries_are_one_intent(catalog) -> None:
    items, queries = catalog
    index = build_flat(items)
    _, ids_2d = search_intents(index, queries[:, 0], 10)
    _, ids_3d = search_intents(index, queries[:, :1], 10)
    np.testing.assert_array_equal(ids_2d, ids_3d)


def test_merge_keeps_each_item_once_with_its_best_score() -> None:
    scores = np.array([[5.0, 4.0, 3.0, 6.0, 1.0, -1.0]], dtype=np.float32)
    ids = np.array([[7, 8, 9, 8, 7, -1]])
    top_scores, top_ids = merge_by_max(scores, ids, 4)
    np.testing.assert_array_equal(top_ids, [[8, 7, 9, -1]])
    np.testing.assert_array_equal(top_scores[:, :3], [[6.0, 5.0, 3.0]])
    assert np.isneginf(top_scores[0, 3])


def _merge_reference(scores: np.ndarray, ids: np.ndarray, k: int) -> list[list[tuple]]:
    """Plain Python: each id's max score, best first, ties to the smaller id."""
    rows = []
    for row_scores, row_ids in zip(scores.tolist(), ids.tolist(), strict=True):
        best: dict[int, float] = {}
        for score, item in zip(row_scores, row_ids, strict=True):
            if item >= 0 and score > -math.inf:
                best[item] = max(best.get(item, -math.inf), score)
        ranked = sorted(best.items(), key=lambda pair: (-pair[1], pair[0]))[:k]
        rows.append([(item, score) for item, score in ranked])
    return rows


def test_merge_matches_a_plain_python_reference_with_ties_and_empty_slots() -> None:
    rng = np.random.default_rng(0)
    values = np.array([-np.inf, -2.5, -1.0, -0.0, 0.0, 1e-40, 0.5, 3.0, 7.25], dtype=np.float32)
    for trial in range(500):
        batch, width, k = (int(v) for v in rng.integers(1, [5, 40, 50]))
        ids = rng.integers(-1, 30, size=(batch, width))
        if trial % 2:  # few distinct values: many ties, signed zeros, -inf
            scores = rng.choice(values, size=(batch, width))
        else:
            scores = rng.standard_normal((batch, width)).astype(np.float32)
        top_scores, top_ids = merge_by_max(scores, ids, k)
        assert top_ids.shape == top_scores.shape == (batch, k)
        for row, want in enumerate(_merge_reference(scores, ids, k)):
            n = len(want)
            assert top_ids[row, :n].tolist() == [item for item, _ in want]
            assert top_scores[row, :n].tolist() == [score for _, score in want]
            assert (top_ids[row, n:] == -1).all() and np.isneginf(top_scores[row, n:]).all()


def test_small_catalog_gets_exact_flat_index(catalog) -> None:
    items, queries = catalog
    built = build_index(items, queries, IndexSettings(flat_max_items=len(items)))
    assert built.info.kind == "flat"
    assert built.info.recall_at_100 == 1.0
    assert built.index.ntotal == len(items) - 1


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_reaches_target_recall_on_fresh_users(catalog, kind: str) -> None:
    items, queries = catalog
    settings = IndexSettings(flat_max_items=100, kind=kind, tune_users=200)
    built = build_index(items, queries[:200], settings)
    assert built.info.kind == kind
    assert built.info.recall_at_100 >= settings.target_recall
    _, exact = brute_force(items, queries[200:], 100)
    _, approx = search_intents(built.index, queries[200:], 100)
    # fresh users scatter around the tuned recall; the margin keeps them near the target
    assert recall_at(approx, exact) >= settings.target_recall - 0.02
    param = "nprobe" if kind == "ivf" else "ef_search"
    assert built.info.params[param] >= 1


def test_written_index_reads_back_with_its_parameters(tmp_path, catalog) -> None:
    items, queries = catalog
    built = build_index(items, queries[:100], IndexSettings(flat_max_items=100, tune_users=100))
    path = tmp_path / "index.faiss"
    write_index(built.index, path)
    loaded = read_index(path, built.info)
    np.testing.assert_array_equal(
        search_intents(loaded, queries[100:150], 10)[1],
        search_intents(built.index, queries[100:150], 10)[1],
    )


def test_cpu_device_keeps_index_on_cpu(catalog) -> None:
    index = build_flat(catalog[0])
    moved, where = to_device(index, "cpu")
    assert moved is index and where == "cpu"


def test_auto_device_without_gpu_stays_on_cpu(catalog) -> None:
    from models_export.index import gpu_available

    if gpu_available():
        pytest.skip("a GPU is present: covered by test_index_moves_to_gpu")
    _, where = to_device(build_flat(catalog[0]), "auto")
    assert where == "cpu"
    with pytest.raises(RuntimeError, match="GPU"):
        to_device(build_flat(catalog[0]), "cuda")


@pytest.mark.gpu
def test_index_moves_to_gpu_and_matches_cpu(catalog) -> None:
    from models_export.index import gpu_available

    if not gpu_available():
        pytest.skip("needs faiss-gpu and a CUDA GPU")
    items, queries = catalog
    cpu = build_flat(items)
    gpu, where = to_device(cpu, "auto")
    assert where == "cuda"
    np.testing.assert_array_equal(
        search_intents(gpu, queries, 10)[1], search_intents(cpu, queries, 10)[1]
    )
