"""Turning variable-length id sequences into left-padded arrays (0 = padding)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def left_pad(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Keep the most recent `length` ids of each sequence, padding on the left with 0.

    (U,) ragged -> (U, length) int64
    """
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        tail = np.asarray(seq[-length:], dtype=np.int64) if length else seq[:0]
        if len(tail):
            out[row, length - len(tail) :] = tail
    return out


def random_windows(
    sequences: Sequence[np.ndarray], length: int, rng: np.random.Generator, recent_share: float
) -> np.ndarray:
    """One training window per user: the most recent `length` ids, or (with probability
    1 - recent_share) a window ending at a random earlier position, which gives long histories
    more than one training example per epoch.
    """
    out = np.zeros((len(sequences), length), dtype=np.int64)
    for row, seq in enumerate(sequences):
        end = len(seq)
        if end > length and rng.random() >= recent_share:
            end = int(rng.integers(length, len(seq) + 1))
        tail = np.asarray(seq[max(0, end - length) : end], dtype=np.int64)
        if len(tail):
            out[row, length - len(tail) :] = tail
    return out


def history_windows(sequences: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Every action of every user as a prediction target once: each history cut into consecutive
    windows ending at its latest action (the oldest one shorter), overlapping by one id so that
    the first target of a window is predicted from the last id of the one before.

    (U,) ragged -> (W, length) int64, W >= U
    """
    step = max(length - 1, 1)
    windows = []
    for seq in sequences:
        # a one-action history has no target but keeps its row, as in `random_windows`
        ends = range(len(seq), 1, -step) if len(seq) > 1 else [len(seq)]
        windows.extend(seq[max(0, end - length) : end] for end in ends)
    return left_pad(windows, length)


def shuffled_batches(
    windows: np.ndarray, batch_size: int, rng: np.random.Generator, *, by_length: bool
) -> list[np.ndarray]:
    """Row indices of `windows` (U, T) in batches of `batch_size`, in random order.

    `by_length`: each batch holds windows of about the same real length (sorted by length, ties
    in random order), so that one long window does not make a whole batch pay for its padding:
    on Amazon Beauty (7 actions a user, a few over 50) a random batch of 128 is padded to ~48
    columns. The price is that short windows are batched with short ones, which gives their
    predictions more weight in the batch-mean loss.
    """
    if by_length:
        order = np.lexsort((rng.random(len(windows)), (windows != 0).sum(1)))
    else:
        order = rng.permutation(len(windows))
    batches = [order[start : start + batch_size] for start in range(0, len(order), batch_size)]
    if by_length:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches
