"""`DELETE /users/{user_id}` against a real server and its real redis-server: the API key is
required, every key mentioning the user is gone (all keys scanned), the in-process history copy
is dropped, the user is a cold start afterwards, and the audit line holds no item id."""

from __future__ import annotations

import logging
import re

import pytest
import redis

USER, OTHER = "forget-me", "keep-me"
KEY = {"X-API-Key": "s3cret"}


def _keys(url: str) -> list[str]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return list(client.scan_iter("*", count=1000))
    finally:
        client.close()


def test_forgetting_a_user_erases_them_everywhere(
    start_server, catalog, caplog: pytest.LogCaptureFixture
) -> None:
    items = [catalog.external_ids[i] for i in (3, 4, 5)]
    with start_server(api_key="s3cret", history_cache_size=100) as live, live.client() as client:
        url = live.app.state.embedded.url
        for user in (USER, OTHER):
            events = [
                {"user_id": user, "item_id": item, "event_id": f"{user}-{item}"} for item in items
            ]
            assert client.post("/events", json={"events": events}, headers=KEY).status_code == 200
        # what the refine stage writes for a refined request of the user (tested on its own in
        # tests/unit/serving/test_forget_user.py): an entry and the user's index of entries
        store = redis.Redis.from_url(url, decode_responses=True)
        store.set("intentrec:refine:abc", "[1,2,3]")
        store.sadd("intentrec:{forget-me}:refine", "intentrec:refine:abc")
        store.close()
        # read the history twice: the second answer comes from the process's copy
        for _ in range(2):
            assert client.post("/recommend", json={"user_id": USER, "k": 5}).status_code == 200
        assert any(USER in key for key in _keys(url))

        assert client.delete(f"/users/{USER}").status_code == 401
        with caplog.at_level(logging.INFO, logger="intentrec.audit"):
            answer = client.delete(f"/users/{USER}", headers=KEY)
        assert answer.status_code == 200, answer.text
        assert answer.json() == {
            "user_id": USER,
            "history_items": 3,
            "event_ids": 3,
            "refine_entries": 1,
            "cached_histories": 1,
        }
        remaining = _keys(url)
        assert not [key for key in remaining if USER in key]
        assert "intentrec:refine:abc" not in remaining
        assert any(OTHER in key for key in remaining)

        assert client.get(f"/users/{USER}/history").json()["items"] == []
        body = client.post("/recommend", json={"user_id": USER, "k": 5}).json()
        assert "cold_start" in body["degraded"]
        assert [
            i["item_id"] for i in client.get(f"/users/{OTHER}/history").json()["items"]
        ] == items

        again = client.delete(f"/users/{USER}", headers=KEY).json()
        assert again["history_items"] == again["event_ids"] == again["refine_entries"] == 0

    audit = [r.getMessage() for r in caplog.records if r.name == "intentrec.audit"]
    # the whole line: a digest of the id and counts, so neither the id nor an item id
    assert len(audit) == 1
    assert re.fullmatch(
        r"forgot user sha256:[0-9a-f]{16}: 3 history items, 3 event ids, 1 refine entries",
        audit[0],
    )
