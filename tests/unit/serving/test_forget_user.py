"""Forgetting a user in a real redis-server: every key of the user goes, with the cached
re-rankings their requests wrote, and nobody else's."""

from __future__ import annotations

from serving.clients.history_store import NewEvent
from serving.refine.cache import RefineCache, cache_key
from tests.unit.serving.test_history_store import _store

# `u*1` is a glob: an unescaped SCAN pattern would also take `u11` and `ux1`.
FORGOTTEN, OTHERS = "u*1", ("u11", "ux1")


def _refine_key(history: list[int]) -> str:
    return cache_key(
        model_version="v1",
        llm_model="m",
        blend=0.0,
        fixed_top=5,
        history_ids=history,
        candidate_ids=list(range(10)),
    )


async def _all_keys(store) -> list[str]:
    return [key async for key in store.client.scan_iter("*", 1000)]


async def test_forget_erases_the_users_keys_and_refine_entries_and_nobody_elses(
    embedded,
) -> None:
    store = _store(embedded.url, max_len=10)
    refine = RefineCache(store.client, ttl_s=600)
    try:
        for user in (FORGOTTEN, *OTHERS):
            await store.append(
                [NewEvent(user, "7", "e1"), NewEvent(user, "8", "e2"), NewEvent(user, "9", None)]
            )
        await refine.set(_refine_key([7, 8]), list(range(10)), user_id=FORGOTTEN)
        await refine.set(_refine_key([7, 8, 9]), list(range(10)), user_id=FORGOTTEN)
        await refine.set(_refine_key([1]), list(range(10)), user_id="u11")
        await refine.set(_refine_key([2]), list(range(10)))  # a request without a user id
        before = await _all_keys(store)

        erased = await store.forget(FORGOTTEN, timeout_s=5.0)

        assert (erased.history_items, erased.event_ids, erased.refine_entries) == (3, 2, 2)
        after = await _all_keys(store)
        assert not [key for key in after if FORGOTTEN in key]
        assert _refine_key([7, 8]) not in after and _refine_key([7, 8, 9]) not in after
        gone = set(before) - set(after)
        # history, two event ids, the refine index and the two entries it named
        assert len(gone) == 6
        for user in OTHERS:
            assert await store.history(user) == ["7", "8", "9"]
        assert await refine.get(_refine_key([1]), 1.0) == list(range(10))
        assert await refine.get(_refine_key([2]), 1.0) == list(range(10))

        again = await store.forget(FORGOTTEN, timeout_s=5.0)
        assert (again.history_items, again.event_ids, again.refine_entries) == (0, 0, 0)
        assert await store.history(FORGOTTEN) == []
    finally:
        await store.aclose()
