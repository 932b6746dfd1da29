"""The local history cache: its bookkeeping alone, then kept coherent by a real redis-server."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from serving.clients.history_cache import HistoryCache, InvalidationListener
from serving.clients.history_store import KEY_PREFIX, HistoryStore, NewEvent, connect
from serving.metrics import Metrics


def _active_cache(max_entries: int = 10, ttl_s: float = 60.0) -> HistoryCache:
    cache = HistoryCache(max_entries, ttl_s, Metrics())
    cache.activate()
    return cache


def test_a_finished_read_is_kept_and_answered() -> None:
    cache = _active_cache()
    token = cache.begin_read("k")
    cache.finish_read("k", token, ["1", "2"])
    assert cache.get("k") == ("1", "2")


def test_an_invalidation_that_overtakes_the_read_reply_keeps_it_out() -> None:
    cache = _active_cache()
    token = cache.begin_read("k")
    cache.invalidate("k")  # the write's announcement came before the (older) reply
    cache.finish_read("k", token, ["old"])
    assert cache.get("k") is None


def test_only_the_latest_of_two_concurrent_reads_is_kept() -> None:
    cache = _active_cache()
    first = cache.begin_read("k")
    second = cache.begin_read("k")
    cache.finish_read("k", first, ["first"])
    assert cache.get("k") is None
    cache.finish_read("k", second, ["second"])
    assert cache.get("k") == ("second",)


def test_an_abandoned_read_leaves_nothing_behind() -> None:
    cache = _active_cache()
    token = cache.begin_read("k")
    cache.abandon_read("k", token)
    cache.finish_read("k", token, ["late"])
    assert cache.get("k") is None


def test_the_least_recently_used_entry_goes_first() -> None:
    cache = _active_cache(max_entries=2)
    for key in ("a", "b"):
        cache.finish_read(key, cache.begin_read(key), [key])
    assert cache.get("a") == ("a",)  # "b" is now the least recently used
    cache.finish_read("c", cache.begin_read("c"), ["c"])
    assert len(cache) == 2
    assert cache.get("b") is None
    assert cache.get("a") == ("a",)


def test_entries_expire() -> None:
    cache = _active_cache(ttl_s=0.01)
    cache.finish_read("k", cache.begin_read("k"), ["1"])
    time.sleep(0.02)
    assert cache.get("k") is None
    assert len(cache) == 0


def test_an_inactive_cache_keeps_nothing_and_deactivating_forgets_everything() -> None:
    cache = HistoryCache(10, 60.0, Metrics())
    assert cache.begin_read("k") is None
    cache.activate()
    cache.finish_read("k", cache.begin_read("k"), ["1"])
    pending = cache.begin_read("p")
    cache.deactivate()
    assert len(cache) == 0
    cache.activate()
    cache.finish_read("p", pending, ["stale"])  # began before the listener went down
    assert cache.get("p") is None


class Served:
    """A store with its cache and listener, as the app wires them."""

    def __init__(self, url: str, max_len: int = 5) -> None:
        self.metrics = Metrics()
        client = connect(url, 500, 4)
        self.cache = HistoryCache(100, 60.0, self.metrics)
        self.listener = InvalidationListener.for_client(client, KEY_PREFIX, self.cache, 0.05, 1.0)
        self.store = HistoryStore(
            client,
            max_len=max_len,
            event_ttl_s=60,
            timeout_ms=500,
            write_timeout_ms=500,
            retry_s=0.05,
            metrics=self.metrics,
            cache=self.cache,
        )

    async def wait_subscribed(self) -> None:
        async with asyncio.timeout(10):
            await self.listener.subscribed.wait()


@pytest.fixture
async def served(embedded) -> AsyncIterator[Served]:
    served = Served(embedded.url)
    task = asyncio.create_task(served.listener.run())
    await served.wait_subscribed()
    yield served
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await served.store.aclose()


async def _eventually(condition, timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


async def test_a_write_by_another_process_evicts_the_entry(served, embedded) -> None:
    await served.store.append([NewEvent("u", "a", None)])
    assert await served.store.history("u") == ["a"]
    assert await served.store.history("u") == ["a"]
    assert len(served.cache) == 1
    other = Served(embedded.url)  # another server process: its own pool, no shared memory
    try:
        await other.store.append([NewEvent("u", "b", None)])
    finally:
        await other.store.aclose()
    await _eventually(lambda: len(served.cache) == 0)
    assert await served.store.history("u") == ["a", "b"]
    assert await served.store.recent("u", 1) == ["b"]  # a shorter read is served from the copy
    outcomes = served.metrics.render().decode()
    assert 'intentrec_history_cache_total{outcome="hit"} 2.0' in outcomes
    assert 'intentrec_history_cache_total{outcome="invalidated"} 1.0' in outcomes


async def test_this_process_reads_its_own_write_at_once(served) -> None:
    assert await served.store.history("u") == []
    await served.store.append([NewEvent("u", "a", "e1")])
    assert await served.store.history("u") == ["a"]  # no wait for Redis's announcement


async def test_a_flush_empties_the_cache(served, embedded) -> None:
    await served.store.append([NewEvent("u", "a", None)])
    await served.store.history("u")
    direct = aioredis.from_url(embedded.url)
    try:
        await direct.flushall()
    finally:
        await direct.aclose()
    await _eventually(lambda: len(served.cache) == 0)
    assert await served.store.history("u") == []


async def test_the_cache_is_off_while_redis_is_down_and_back_with_it(served, embedded) -> None:
    await served.store.append([NewEvent("u", "a", None)])
    await served.store.history("u")
    os.kill(embedded.pid, signal.SIGKILL)
    embedded.process.wait()
    await _eventually(lambda: not served.cache.active)
    assert len(served.cache) == 0
    assert embedded.ensure_running()
    await served.wait_subscribed()
    assert served.cache.active
    assert await served.store.probe()
    assert await served.store.history("u") == ["a"]
    assert len(served.cache) == 1
