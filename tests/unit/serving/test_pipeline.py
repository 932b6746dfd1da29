"""Pure recommend stages: history merge, encoder input, filtering, popularity fallback."""

from __future__ import annotations

import time

import numpy as np

from serving.pipeline.deadline import Deadline
from serving.pipeline.history import encoder_input, merge_history
from serving.pipeline.ranking import fetch_size, filter_candidates, popularity_fallback

KNOWN = {"a": 1, "b": 2, "c": 3, "d": 4}


def test_merge_puts_request_history_after_stored_and_reports_unknown_once() -> None:
    history = merge_history(["a", "x", "b"], ["c", "x", "y"], KNOWN)
    assert history.internal_ids.tolist() == [1, 2, 3]
    assert history.unknown == ["x", "y"]
    assert not history.empty


def test_merge_of_only_unknown_ids_is_empty() -> None:
    history = merge_history([], ["zz"], KNOWN)
    assert history.empty
    assert history.unknown == ["zz"]


def test_encoder_input_keeps_the_most_recent_and_left_pads() -> None:
    assert encoder_input(np.array([5, 6], dtype=np.int64), 4).tolist() == [0, 0, 5, 6]
    assert encoder_input(np.arange(1, 8, dtype=np.int64), 3).tolist() == [5, 6, 7]
    assert encoder_input(np.array([], dtype=np.int64), 2).tolist() == [0, 0]


def test_filter_drops_padding_missing_and_excluded_keeping_order() -> None:
    ids = np.array([4, 0, 2, -1, 3, 1], dtype=np.int64)
    scores = np.array([9, 8, 7, 6, 5, 4], dtype=np.float32)
    kept_ids, kept_scores = filter_candidates(ids, scores, {2, 1})
    assert kept_ids.tolist() == [4, 3]
    assert kept_scores.tolist() == [9, 5]


def test_popularity_fallback_skips_excluded_and_returns_k() -> None:
    popularity = np.array([0, 10, 50, 30, 20], dtype=np.int64)
    ranked = np.argsort(-popularity[1:], kind="stable") + 1  # [2, 3, 4, 1]
    ids, scores = popularity_fallback(ranked, popularity, {3}, 2)
    assert ids.tolist() == [2, 4]
    assert scores.tolist() == [50.0, 20.0]


def test_fetch_size_covers_exclusions_within_the_catalog() -> None:
    assert fetch_size(10, 5, 1000) == 15
    assert fetch_size(10, 5, 12) == 12


def test_deadline_accumulates_stages_and_reports_total() -> None:
    deadline = Deadline(budget_ms=1000)
    with deadline.stage("a"):
        time.sleep(0.002)
    with deadline.stage("a"):
        pass
    timings = deadline.finish()
    assert timings["a"] >= 2.0
    assert timings["total"] >= timings["a"]
    assert deadline.remaining_ms() < 1000
