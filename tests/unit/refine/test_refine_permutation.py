"""Label log-probabilities into an order of the candidates: the rank blend, applying it."""

from __future__ import annotations

import pytest

from serving.refine.permutation import apply_order, blend, label_scores


def test_blend_zero_keeps_encoder_order_and_one_follows_the_llm() -> None:
    scores = [-3.0, None, -0.5, -1.0]
    assert blend(scores, 0.0) == [0, 1, 2, 3]
    # LLM only: best log-probability first; the label it did not return goes last.
    assert blend(scores, 1.0) == [2, 3, 0, 1]


def test_blend_half_averages_the_two_ranks() -> None:
    # Rank scores: encoder 1, 2/3, 1/3, 0; LLM (2 best, then 0, 1, 3) 2/3, 1/3, 1, 0.
    # Averages .83, .5, .67, 0: the LLM's pick moves up one place, not to the top.
    assert blend([-2.0, -3.0, -0.5, -9.0], 0.5) == [0, 2, 1, 3]
    # Exactly opposite opinions cancel out; the tie keeps encoder order.
    assert blend([-4.0, -3.0, -2.0, -1.0], 0.5) == [0, 1, 2, 3]


def test_blend_ties_keep_encoder_order() -> None:
    assert blend([None, None, None], 1.0) == [0, 1, 2]
    assert blend([-1.0, -1.0], 0.5) == [0, 1]


def test_blend_rejects_a_weight_outside_0_1() -> None:
    with pytest.raises(ValueError, match="blend weight"):
        blend([-1.0, -2.0], 1.5)


def test_label_scores_follow_the_keys() -> None:
    assert label_scores({"B": -1.0, "Z": -0.1}, ["A", "B"]) == [None, -1.0]


def test_apply_order_never_moves_the_fixed_top() -> None:
    items = list("abcdefgh")
    out = apply_order(items, 5, [2, 0, 1])
    assert out[:5] == items[:5]
    assert out[5:] == ["h", "f", "g"]


def test_apply_order_refuses_a_non_permutation() -> None:
    with pytest.raises(ValueError, match="not a permutation"):
        apply_order(list("abcdefg"), 5, [0, 0])
