"""Turning an LLM answer into a valid order of the candidates. Pure functions.

Positions are indices into the part being reordered (candidates fixed_top..N-1), in encoder order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")


def _rank_scores(values: Sequence[float]) -> list[float]:
    """Normalised ranks in [0, 1] (best = 1, ties share their mean rank)."""
    n = len(values)
    if n == 1:
        return [1.0]
    order = sorted(range(n), key=lambda i: -values[i])
    ranks = [0.0] * n
    start = 0
    while start < n:
        end = start
        while end + 1 < n and values[order[end + 1]] == values[order[start]]:
            end += 1
        mean_rank = (start + end) / 2
        for k in range(start, end + 1):
            ranks[order[k]] = 1.0 - mean_rank / (n - 1)
        start = end + 1
    return ranks


def blend(llm_scores: Sequence[float | None], weight: float) -> list[int]:
    """Positions ordered by `(1 - weight) * encoder rank + weight * LLM rank`.

    `llm_scores[i]` scores the candidate at encoder position i (higher is better; None = the LLM
    gave it nothing, i.e. the lowest score). Ranks rather than raw log-probabilities are blended
    so that the weight does not depend on how peaked the model's answer is. Ties keep encoder
    order.
    """
    n = len(llm_scores)
    if n == 0:
        return []
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"blend weight must lie in [0, 1], got {weight}")
    llm = _rank_scores([-math.inf if s is None else s for s in llm_scores])
    encoder = _rank_scores([float(n - i) for i in range(n)])
    combined = [(1.0 - weight) * e + weight * s for e, s in zip(encoder, llm, strict=True)]
    return sorted(range(n), key=lambda i: (-combined[i], i))


def label_scores(logprobs: Mapping[str, float], keys: Sequence[str]) -> list[float | None]:
    """Each candidate's label log-probability (None when the label was not among those returned)."""
    return [logprobs.get(key) for key in keys]


def apply_order(candidates: Sequence[T], fixed_top: int, positions: Sequence[int]) -> list[T]:
    """The first `fixed_top` candidates unchanged, then the rest in `positions` order."""
    head, tail = list(candidates[:fixed_top]), candidates[fixed_top:]
    if sorted(positions) != list(range(len(tail))):
        raise ValueError(f"positions {list(positions)} are not a permutation of 0..{len(tail) - 1}")
    return head + [tail[p] for p in positions]
