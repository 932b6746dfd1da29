"""`intentrec stack up|down` end to end: a real redis-server and the real `intentrec serve` as
background processes on 127.0.0.1, health-waited, then stopped with nothing left behind."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
import redis

from serving.stack import StackError, StackSettings, is_running, stack_down, stack_status, stack_up

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _settings(state_dir: Path) -> StackSettings:
    return StackSettings(
        state_dir=state_dir,
        redis_port=_free_port(),
        api_port=_free_port(),
        start_timeout_s=120,
        stop_timeout_s=15,
    )


def test_up_serves_through_its_own_redis_and_down_stops_everything(
    serving_bundles, tmp_path
) -> None:
    settings = _settings(tmp_path / "stack")
    try:
        states = stack_up(settings, bundle=serving_bundles)
        assert set(states) == {"redis", "api"}
        api = states["api"].url
        assert httpx.get(f"{api}/readyz").json()["ready"] is True
        event = {"user_id": "stack-user", "item_id": "50", "event_id": "stack-e1"}
        assert httpx.post(f"{api}/events", json=event).status_code // 100 == 2
        store = redis.Redis(host="127.0.0.1", port=settings.redis_port)
        assert store.config_get("appendonly") == {"appendonly": "yes"}
        assert store.dbsize() > 0  # the event went to the stack's redis-server
        store.close()
        assert (settings.state_dir / "api.pid").read_text().strip() == str(states["api"].pid)
        again = stack_up(settings, bundle=serving_bundles)  # idempotent: nothing restarted
        assert {n: s.pid for n, s in again.items()} == {n: s.pid for n, s in states.items()}
        assert all(alive for _, alive in stack_status(settings).values())
    finally:
        stopped = stack_down(settings)
    assert stopped == ["api", "redis"]
    assert not any(is_running(state) for state in states.values())
    assert stack_status(settings) == {}
    assert not list(settings.state_dir.glob("*.pid"))
    assert stack_down(settings) == []


def test_a_service_that_dies_at_start_is_reported_with_its_log(tmp_path) -> None:
    settings = _settings(tmp_path / "stack")
    try:
        with pytest.raises(StackError, match="api exited") as failure:
            stack_up(settings, bundle=tmp_path / "no-such-bundle")
        assert "no-such-bundle" in str(failure.value)  # the tail of the API's own log
        assert set(stack_status(settings)) == {"redis"}  # started before the API: still up
    finally:
        assert stack_down(settings) == ["redis"]
