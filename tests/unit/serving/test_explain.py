"""Explanations from the encoder's own weights, on a small example worked by hand."""

from __future__ import annotations

import numpy as np

from serving.pipeline.explain import ItemReason, explain_items

# Two intents in 2-d: intent 0 points along x, intent 1 along y.
USER_VECTORS = np.array([[1.0, 0.0], [0.0, 1.0]])
# Encoder input of max_len 6: two padding columns, then items 11, 12, 13, 12 (12 twice).
ROW = np.array([0, 0, 11, 12, 13, 12])
# Weights of the last 5 positions (the first column of ROW is outside the window).
WEIGHTS = np.array(
    [
        [0.0, 0.5, 0.1, 0.1, 0.3],  # intent 0: item 11, then 12 (twice, counted once), 13
        [0.0, 0.0, 0.2, 0.8, 0.0],  # intent 1: item 13, then 12; item 11 has no weight
    ]
)


def test_each_item_gets_the_intent_that_scores_it_and_that_intents_heaviest_history() -> None:
    items = np.array([[3.0, 1.0], [0.5, 2.0], [1.0, 0.9]])
    reasons = explain_items(items, USER_VECTORS, WEIGHTS, ROW)
    assert reasons == [
        ItemReason(intent=0, because=[11, 12, 13]),
        ItemReason(intent=1, because=[13, 12]),
        ItemReason(intent=0, because=[11, 12, 13]),
    ]


def test_fewer_history_items_asked_for_keeps_the_heaviest() -> None:
    reasons = explain_items(np.array([[1.0, 0.0]]), USER_VECTORS, WEIGHTS, ROW, because=1)
    assert reasons == [ItemReason(intent=0, because=[11])]


def test_padding_never_explains_anything() -> None:
    row = np.array([0, 0, 0, 0, 0, 7])
    weights = np.array([[0.2, 0.2, 0.2, 0.2, 0.2]])  # a model that spreads onto padding
    reasons = explain_items(np.array([[1.0, 0.0]]), USER_VECTORS[:1], weights, row)
    assert reasons == [ItemReason(intent=0, because=[7])]
