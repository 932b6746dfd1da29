"""Ranking metrics from the 0-based rank of each user's target item.

A rank is the number of candidates scored strictly above the target, so ties are resolved in the
target's favour only when scores are exactly equal (rare with float scores).
"""

from __future__ import annotations

import numpy as np

DEFAULT_CUTOFFS = (5, 10, 20)


def target_ranks(scores: np.ndarray, target_scores: np.ndarray) -> np.ndarray:
    """(B, C) candidate scores and (B,) target scores -> (B,) 0-based ranks of the targets."""
    return (scores > target_scores[:, None]).sum(axis=1)


def ranking_metrics(
    ranks: np.ndarray, cutoffs: tuple[int, ...] = DEFAULT_CUTOFFS
) -> dict[str, float]:
    """HR@k, NDCG@k and MRR@k averaged over users (one relevant item per user)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    if ranks.size == 0:
        raise ValueError("cannot compute ranking metrics over zero users")
    metrics: dict[str, float] = {}
    for k in cutoffs:
        hit = ranks < k
        metrics[f"hr@{k}"] = float(hit.mean())
        metrics[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
        metrics[f"mrr@{k}"] = float(np.where(hit, 1.0 / (ranks + 1.0), 0.0).mean())
    return metrics
