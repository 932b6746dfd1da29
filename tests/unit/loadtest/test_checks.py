"""Contract checks that turn a wrong /recommend answer into a counted failure."""

from __future__ import annotations

import pytest

from loadtest.checks import recommend_problem, total_ms


def _body(ids: list[str], **overrides) -> dict:
    items = [
        {"item_id": item_id, "score": 1.0 / rank, "rank": rank, "title": f"t{item_id}"}
        for rank, item_id in enumerate(ids, start=1)
    ]
    body = {
        "items": items,
        "model_version": "v1",
        "refined": False,
        "degraded": [],
        "timings_ms": {"total": 2.5},
        "request_id": "r",
    }
    return body | overrides


def test_a_correct_answer_passes() -> None:
    assert recommend_problem(_body(["1", "2", "3"]), k=3, seen={"9"}, excluded=["8"]) is None


@pytest.mark.parametrize(
    ("body", "kwargs", "message"),
    [
        ([], {"k": 3}, "not a JSON object"),
        ({"items": []}, {"k": 3}, "lacks `model_version`"),
        (_body(["1", "2"]), {"k": 3}, "expected 3 items, got 2"),
        (_body(["1", "2", "1"]), {"k": 3}, "duplicate item ids: ['1']"),
        (_body(["1", "2", "3"]), {"k": 3, "seen": {"2"}}, "seen items returned"),
        (_body(["1", "2", "3"]), {"k": 3, "excluded": ["3"]}, "excluded items returned: ['3']"),
        (_body(["1", "2"], items=[{"item_id": "1", "rank": 2}]), {"k": 1}, "rank 2"),
        (_body(["1"], items=[{"rank": 1}]), {"k": 1}, "no `item_id`"),
    ],
)
def test_each_broken_answer_is_named(body, kwargs, message) -> None:
    problem = recommend_problem(body, **kwargs)
    assert problem is not None and message in problem


def test_seen_items_are_allowed_when_the_history_store_was_unavailable() -> None:
    body = _body(["1", "2"], degraded=["history_store_unavailable"])
    assert recommend_problem(body, k=2, seen={"2"}) is None
    assert recommend_problem(body, k=2, excluded=["2"]) is not None  # `exclude` still holds


def test_total_is_read_when_reported() -> None:
    assert total_ms(_body(["1"])) == 2.5
    assert total_ms(_body(["1"], timings_ms={})) is None
