"""Contract checks on /recommend answers (pure): each returns the first problem found, or None.

The locustfile marks a request failed with the returned message, so a wrong answer counts against
the error objective exactly like a 5xx.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any


def recommend_problem(
    body: Any,
    *,
    k: int,
    seen: Collection[str] = (),
    excluded: Collection[str] = (),
) -> str | None:
    """What is wrong with a /recommend response body, given what the request asked for."""
    if not isinstance(body, dict):
        return f"body is not a JSON object: {type(body).__name__}"
    for key in ("items", "model_version", "refined", "degraded", "timings_ms", "request_id"):
        if key not in body:
            return f"response lacks `{key}`"
    items = body["items"]
    if not isinstance(items, list):
        return "`items` is not a list"
    if len(items) != k:
        return f"expected {k} items, got {len(items)}"
    ids: list[str] = []
    for position, item in enumerate(items, start=1):
        if not isinstance(item, dict) or "item_id" not in item:
            return f"item {position} has no `item_id`"
        if item.get("rank") != position:
            return f"item {position} has rank {item.get('rank')!r}"
        ids.append(str(item["item_id"]))
    if len(set(ids)) != len(ids):
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        return f"duplicate item ids: {duplicates[:5]}"
    if "history_store_unavailable" in body["degraded"]:
        # Without its store the server cannot know what was seen: degraded, not wrong.
        seen = ()
    if leaked := [i for i in ids if i in seen]:
        return f"seen items returned with exclude_seen: {leaked[:5]}"
    if leaked := [i for i in ids if i in excluded]:
        return f"excluded items returned: {leaked[:5]}"
    return None


def total_ms(body: dict[str, Any]) -> float | None:
    """The server-side total of a response, when it reports one."""
    timings = body.get("timings_ms")
    if isinstance(timings, dict) and isinstance(timings.get("total"), int | float):
        return float(timings["total"])
    return None
