"""Merging the stored and the requested history into the encoder's input."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class History:
    internal_ids: np.ndarray  # int64, oldest first, only ids the bundle knows
    unknown: list[str]  # external ids the bundle does not know, in first-seen order

    @property
    def empty(self) -> bool:
        return self.internal_ids.size == 0


def merge_history(
    stored: Sequence[str], requested: Sequence[str], known: Mapping[str, int]
) -> History:
    """Stored events first, then the request's `history` as the most recent actions.

    Unknown ids (items added after the bundle was built, typos) are dropped and reported.
    """
    ids: list[int] = []
    unknown: dict[str, None] = {}
    for external in (*stored, *requested):
        internal = known.get(external)
        if internal is None:
            unknown[external] = None
        else:
            ids.append(internal)
    return History(np.asarray(ids, dtype=np.int64), list(unknown))


def encoder_input(history: np.ndarray, max_len: int) -> np.ndarray:
    """(T,) -> (max_len,) int64: the last `max_len` items, left-padded with 0."""
    row = np.zeros(max_len, dtype=np.int64)
    recent = history[-max_len:]
    if recent.size:
        row[max_len - recent.size :] = recent
    return row
