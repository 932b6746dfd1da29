"""Beyond-accuracy figures of a set of recommendation lists: who gets shown, how popular, how
varied. Pure numpy over item ids 1..N (0 is padding), so the same functions measure a model's
test lists and the refine stage's before and after.

- coverage: share of the catalog that appears in at least one list;
- Gini index of exposure: 0 when every item is shown equally often, (N - 1) / N when one item
  takes every slot; items never shown count as zero exposure;
- popularity percentile: where a shown item sits in the catalog by training popularity (100 =
  the most popular item, 0 = the least), averaged over every slot;
- novelty: mean self-information -log2(p) of the shown items, p = the share of training users
  who interacted with the item (an item nobody interacted with counts as one user's, so the
  figure stays finite);
- intra-list diversity: 1 - mean pairwise cosine of the item embeddings within a list, averaged
  over lists.
"""

from __future__ import annotations

import numpy as np

BEYOND_ACCURACY_CUTOFF = 10


def _catalog_ids(lists: np.ndarray, n_items: int) -> np.ndarray:
    lists = np.asarray(lists, dtype=np.int64)
    if lists.ndim != 2 or lists.size == 0:
        raise ValueError(f"lists must be a non-empty (users, k) array, got shape {lists.shape}")
    if lists.min() < 1 or lists.max() > n_items:
        raise ValueError(f"item ids must be in 1..{n_items}, got {lists.min()}..{lists.max()}")
    return lists


def exposure(lists: np.ndarray, n_items: int) -> np.ndarray:
    """(N + 1,) how many lists show each item; row 0 (padding) stays 0."""
    lists = _catalog_ids(lists, n_items)
    return np.bincount(lists.ravel(), minlength=n_items + 1)


def catalog_coverage(lists: np.ndarray, n_items: int) -> float:
    return float((exposure(lists, n_items)[1:] > 0).mean())


def gini_index(values: np.ndarray) -> float:
    """Gini index of non-negative values (0: all equal)."""
    x = np.sort(np.asarray(values, dtype=np.float64))
    n, total = len(x), x.sum()
    if n == 0 or total == 0:
        raise ValueError("the Gini index needs at least one positive value")
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * x).sum()) / (n * total) - (n + 1) / n)


def popularity_percentiles(popularity: np.ndarray) -> np.ndarray:
    """(N + 1,) each item's percentile by training popularity among items 1..N, ties sharing
    their mid rank; row 0 is 0."""
    counts = np.asarray(popularity, dtype=np.float64)[1:]
    n = len(counts)
    order = np.sort(counts)
    below = np.searchsorted(order, counts, side="left")
    tied = np.searchsorted(order, counts, side="right") - below
    mid_rank = below + (tied - 1) / 2
    percentiles = np.zeros(n + 1)
    percentiles[1:] = 100.0 * mid_rank / max(n - 1, 1)
    return percentiles


def novelty(lists: np.ndarray, popularity: np.ndarray, n_users: int) -> float:
    counts = np.asarray(popularity, dtype=np.float64)
    lists = _catalog_ids(lists, len(counts) - 1)
    share = np.clip(np.maximum(counts[lists], 1.0) / n_users, None, 1.0)
    return float(-np.log2(share).mean())


def intra_list_diversity(lists: np.ndarray, item_vectors: np.ndarray) -> float:
    """1 - mean pairwise cosine within each list, averaged over lists of two or more items."""
    vectors = np.asarray(item_vectors, dtype=np.float64)
    lists = _catalog_ids(lists, len(vectors) - 1)
    if lists.shape[1] < 2:
        raise ValueError("intra-list diversity needs lists of at least 2 items")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = vectors / np.where(norms == 0, 1.0, norms)
    listed = unit[lists]  # (U, k, D)
    cosines = np.einsum("ukd,ujd->ukj", listed, listed)
    k = lists.shape[1]
    pair_mean = (cosines.sum(axis=(1, 2)) - np.trace(cosines, axis1=1, axis2=2)) / (k * (k - 1))
    return float(1.0 - pair_mean.mean())


def beyond_accuracy(
    lists: np.ndarray, popularity: np.ndarray, n_users: int, item_vectors: np.ndarray
) -> dict[str, float]:
    """Every figure of the module for (users, k) lists of item ids."""
    n_items = len(popularity) - 1
    shown = exposure(lists, n_items)
    return {
        "coverage": catalog_coverage(lists, n_items),
        "gini": gini_index(shown[1:]),
        "popularity_percentile": float(popularity_percentiles(popularity)[lists].mean()),
        "novelty": novelty(lists, popularity, n_users),
        "diversity": intra_list_diversity(lists, item_vectors),
    }
