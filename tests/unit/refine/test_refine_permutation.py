"""Validating LLM answers into permutations, and the rank blend."""

from __future__ import annotations

import pytest

from serving.refine.permutation import (
    apply_order,
    blend,
    label_scores,
    list_scores,
    parse_id_list,
    repair,
)

KEYS = ["10", "11", "12", "13"]


def test_repair_keeps_a_valid_answer() -> None:
    fixed = repair(["13", "10", "12", "11"], KEYS)
    assert fixed.positions == [3, 0, 2, 1]
    assert (fixed.matched, fixed.dropped, fixed.missing) == (4, 0, 0)


def test_repair_drops_unknown_and_repeated_and_appends_missing_in_encoder_order() -> None:
    fixed = repair(["12", "7", "12", "999", "10"], KEYS)
    assert fixed.positions == [2, 0, 1, 3]
    assert (fixed.matched, fixed.dropped, fixed.missing) == (2, 3, 2)


def test_repair_of_nothing_is_the_encoder_order() -> None:
    assert repair([], KEYS).positions == [0, 1, 2, 3]


@pytest.mark.parametrize(
    ("text", "ids"),
    [
        ("[3, 1, 2]", ["3", "1", "2"]),
        ('{"ids": [5, 4]}', ["5", "4"]),
        ('["7", " 8"]', ["7", "8"]),
        ("Sure! The order is 3, then 1 and 2.", ["3", "1", "2"]),
        ("[true, 2, 2.5, null]", ["2"]),
        ("no ids here", []),
    ],
)
def test_parse_id_list_is_lenient(text: str, ids: list[str]) -> None:
    assert parse_id_list(text) == ids


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


def test_list_scores_rank_named_entries_and_leave_missing_unscored() -> None:
    fixed = repair(["12", "10"], KEYS)
    assert list_scores(fixed) == [3.0, None, 4.0, None]
    assert blend(list_scores(fixed), 1.0) == [2, 0, 1, 3]


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
