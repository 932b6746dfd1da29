"""Faults and lifecycle: Redis killed or slow, restarts, bundle reloads under load."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid

import pytest
import redis

from serving.refine.settings import RefineSettings
from tests.e2e.conftest import switch_to


def _wait_until(check, timeout_s: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} not reached within {timeout_s} s")


def _kill_redis(live) -> None:
    embedded = live.app.state.embedded
    os.kill(embedded.pid, signal.SIGKILL)
    embedded.process.wait()


def test_events_survive_a_restart_of_service_and_redis(start_server, catalog) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    items = [catalog.external_ids[i] for i in (3, 1, 2)]
    events = [
        {"user_id": user, "item_id": item, "event_id": f"e{n}"} for n, item in enumerate(items)
    ]
    with start_server() as live, live.client() as client:
        assert client.post("/events", json={"events": events}).json()["accepted"] == 3
        pid = live.app.state.embedded.pid
    with pytest.raises(ProcessLookupError):  # the service stopped its redis-server
        os.kill(pid, 0)
    with start_server() as live, live.client() as client:
        stored = client.get(f"/users/{user}/history").json()["items"]
        assert [item["item_id"] for item in stored] == items
        assert client.post("/events", json={"events": events}).json()["duplicates"] == 3
        # A kill -9 of Redis loses nothing acknowledged either (append-only, fsync always).
        client.post("/events", json={"user_id": user, "item_id": items[0], "event_id": "last"})
        _kill_redis(live)
    with start_server() as live, live.client() as client:
        response = client.get(f"/users/{user}/history")
        assert response.status_code == 200, response.text
        assert [item["item_id"] for item in response.json()["items"]] == [*items, items[0]]


def test_redis_killed_mid_run_degrades_then_recovers(start_server, catalog) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    stored = [catalog.external_ids[i] for i in range(1, 11)]
    fresh = [catalog.external_ids[i] for i in (20, 21)]
    with start_server(redis_retry_s=1.0) as live, live.client() as client:
        client.post("/events", json={"events": [{"user_id": user, "item_id": i} for i in stored]})

        _kill_redis(live)
        answer = client.post("/recommend", json={"user_id": user, "history": fresh, "k": 5})
        assert answer.status_code == 200
        body = answer.json()
        assert body["degraded"] == ["history_store_unavailable"]
        assert len(body["items"]) == 5  # from the request's history, not popularity
        assert not {item["item_id"] for item in body["items"]} & set(fresh)

        def recovered() -> bool:
            body = client.post("/recommend", json={"user_id": user, "k": 5}).json()
            return body["degraded"] == []

        _wait_until(recovered, what="recovery after Redis restart")

        _kill_redis(live)
        refused = client.post("/events", json={"user_id": user, "item_id": fresh[0]})
        assert refused.status_code == 503
        assert "retry" in refused.json()["error"]["message"]
        popular = client.post("/recommend", json={"user_id": user, "k": 5})
        assert popular.status_code == 200
        _wait_until(
            lambda: (
                client.post("/events", json={"user_id": user, "item_id": fresh[0]}).status_code
                == 200
            ),
            what="events accepted again",
        )
        history = client.get(f"/users/{user}/history").json()["items"]
        assert [item["item_id"] for item in history][: len(stored)] == stored
        assert client.get("/readyz").json()["history_store"] == "ok"


def test_a_slow_redis_costs_the_budget_not_the_answer(start_server, catalog) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    with start_server(redis_timeout_ms=20) as live, live.client() as client:
        client.post("/events", json={"user_id": user, "item_id": catalog.external_ids[1]})
        socket_path = str(live.app.state.embedded.socket)
        blocker = threading.Thread(  # DEBUG SLEEP blocks the real server for 2 s
            target=lambda: redis.Redis(unix_socket_path=socket_path).execute_command(
                "DEBUG", "SLEEP", "2"
            )
        )
        blocker.start()
        time.sleep(0.2)
        started = time.perf_counter()
        answer = client.post("/recommend", json={"user_id": user, "budget_ms": 100})
        waited = time.perf_counter() - started
        blocker.join()
    assert answer.status_code == 200
    assert answer.json()["degraded"] == ["history_store_unavailable"]
    assert waited < 1.0  # far below the 2 s Redis stall


def test_reload_under_eight_concurrent_clients_fails_no_request(
    start_server, serving_bundles, catalog
) -> None:
    results: list[tuple[int, str, list[str]]] = []
    stop = threading.Event()

    def hammer(seed: int) -> None:
        history = [catalog.external_ids[1 + (seed * 7 + j) % (len(catalog) - 1)] for j in range(5)]
        with live.client() as client:
            while not stop.is_set():
                try:
                    response = client.post(
                        "/recommend", json={"history": history, "k": 10, "budget_ms": 10_000}
                    )
                except Exception as exc:  # a dropped connection is a failed request too
                    results.append((0, repr(exc), []))
                    continue
                body = response.json()
                results.append(
                    (response.status_code, body.get("model_version", ""), body.get("degraded"))
                )

    with start_server() as live:
        threads = [threading.Thread(target=hammer, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        try:
            with live.client() as admin:
                for name in ("b", "a", "b"):
                    time.sleep(0.4)
                    switch_to(serving_bundles, name)
                    reloaded = admin.post("/admin/reload").json()
                    assert reloaded["model_version"].endswith(f"-{name}")
            time.sleep(0.4)
        finally:
            stop.set()
            for thread in threads:
                thread.join(30)
            switch_to(serving_bundles, "a")
    assert len(results) > 50
    failed = [r for r in results if r[0] != 200 or r[2] != []]
    assert failed == []
    assert {version[-2:] for _, version, _ in results} == {"-a", "-b"}


def test_watching_bundles_current_switches_by_itself(start_server, serving_bundles) -> None:
    with start_server(watch_bundle=True, watch_interval_s=0.2) as live, live.client() as client:
        assert client.get("/readyz").json()["model_version"].endswith("-a")
        try:
            switch_to(serving_bundles, "b")
            _wait_until(
                lambda: client.get("/readyz").json()["model_version"].endswith("-b"),
                what="switch to bundle b",
            )
        finally:
            switch_to(serving_bundles, "a")


def test_a_dead_llm_server_degrades_refine_not_the_answer(start_server, catalog) -> None:
    with socket.socket() as sock:  # a port nobody listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    history = [catalog.external_ids[i] for i in (1, 2, 3)]
    refine = RefineSettings(llm_base_url=dead, llm_model="none")
    with start_server(refine=refine) as live, live.client() as client:
        assert client.get("/readyz").json()["refine"] == "available"
        body = client.post(
            "/recommend", json={"history": history, "k": 10, "refine": "on", "budget_ms": 200}
        ).json()
    assert len(body["items"]) == 10
    assert body["refined"] is False
    assert any(reason.startswith("refine_") for reason in body["degraded"])
