"""Why an item was recommended, from what the encoder computed anyway (pure functions).

The intent that scored an item is the one whose user vector gives it the highest dot product
(the score retrieval merged by max). The history items behind that intent are the positions
with the largest weights in it: DisenSeq's eq. 6 weights (how much each position adds to the
intent vector), SASRec's last-block attention from the last position (its single "intent").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BECAUSE_ITEMS = 3


@dataclass(frozen=True, slots=True)
class ItemReason:
    intent: int
    because: list[int]  # internal ids of history items, heaviest first, no repeats


def explain_items(
    item_vectors: np.ndarray,
    user_vectors: np.ndarray,
    weights: np.ndarray,
    row: np.ndarray,
    because: int = BECAUSE_ITEMS,
) -> list[ItemReason]:
    """Per recommended item: its intent and up to `because` history items behind it.

    `item_vectors` (n, D) of the recommended items; `user_vectors` (K, D); `weights` (K, W), the
    weights of the last W positions of `row` (the encoder input, left-padded with 0)."""
    intents = np.argmax(item_vectors @ user_vectors.T, axis=1)
    positions = row[row.shape[0] - weights.shape[1] :]
    ranked_per_intent: dict[int, list[int]] = {}
    reasons = []
    for intent in intents.tolist():
        if intent not in ranked_per_intent:
            order = np.argsort(-weights[intent], kind="stable")
            seen: dict[int, None] = {}
            for position in order.tolist():
                item = int(positions[position])
                if item != 0 and weights[intent, position] > 0:
                    seen.setdefault(item)
                if len(seen) == because:
                    break
            ranked_per_intent[intent] = list(seen)
        reasons.append(ItemReason(intent, ranked_per_intent[intent]))
    return reasons
