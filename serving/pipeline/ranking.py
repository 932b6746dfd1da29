"""Filtering, top-k and the popularity fallback over internal item ids."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np


def filter_candidates(
    ids: np.ndarray, scores: np.ndarray, excluded: Collection[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Drop padding (0), missing results (-1) and excluded ids, keeping the order."""
    # A set lookup per candidate: tens of candidates, where np.isin's sorting costs more.
    keep = [n for n, i in enumerate(ids.tolist()) if i > 0 and i not in excluded]
    return ids[keep], scores[keep]


def popularity_fallback(
    ranked_ids: np.ndarray, popularity: np.ndarray, excluded: Collection[int], k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k most popular items not excluded; `ranked_ids` is the catalog by popularity."""
    fetch = min(ranked_ids.size, k + len(excluded))
    ids = ranked_ids[:fetch]
    ids, scores = filter_candidates(ids, popularity[ids].astype(np.float32), excluded)
    return ids[:k], scores[:k]


def fetch_size(k: int, n_excluded: int, n_items: int) -> int:
    """How many retrieval results guarantee k after filtering."""
    return max(1, min(n_items, k + n_excluded))
