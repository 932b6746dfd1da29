"""`intentrec serve --workers 2`: /metrics reports the sum over both workers, whichever answers.

A real server process tree (uvicorn supervisor, two workers, the shared embedded redis-server) on a
real bundle, real HTTP, and prometheus_client's own parser on the scraped text.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from models_export.bundle import load_bundle
from tests.e2e.conftest import TEST_BUDGET_MS, TEST_REDIS_TIMEOUT_MS

WORKERS = 2
START_TIMEOUT_S = 180.0  # two workers load and warm up the bundle on a busy 2-core machine
STOP_TIMEOUT_S = 30.0
ROUND = 10  # requests sent per round, each on its own connection
MAX_REQUESTS = 200  # gives up on seeing both workers answer after this many
CLIENTS = 4


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServeProcess:
    """`intentrec serve` in its own process group, so every process it starts can be killed."""

    def __init__(self, tmp_path: Path, bundle: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Our own TMPDIR shows where serve puts its private metrics directory, and that it goes.
        self.tmp = tmp_path / "tmp"
        self.tmp.mkdir()
        self.log_path = tmp_path / "serve.log"
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PROMETHEUS_MULTIPROC_DIR", "INTENTREC_REDIS_URL")
        }
        env |= {
            "TMPDIR": str(self.tmp),
            "INTENTREC_REDIS_TIMEOUT_MS": str(TEST_REDIS_TIMEOUT_MS),
            "INTENTREC_DEFAULT_BUDGET_MS": str(TEST_BUDGET_MS),
        }
        command = [
            sys.executable, "-c", "from intentrec.cli import main; main()",
            "serve", "--workers", str(WORKERS), "--host", "127.0.0.1", "--port", str(self.port),
            "--bundle", str(bundle), "--data-dir", str(tmp_path / "data"),
        ]  # fmt: skip
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_started(self) -> None:
        """Until every worker has finished its start-up (each logs it), not only the first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.log().count("Application startup complete.") < WORKERS:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited during start-up:\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"workers did not start:\n{self.log()[-3000:]}")
            time.sleep(0.2)

    def metrics_dir(self) -> Path:
        (path,) = self.tmp.glob("intentrec-metrics-*")
        return path

    def stop(self) -> int:
        """SIGTERM to uvicorn's supervisor: the workers shut down, then serve cleans up."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_TIMEOUT_S)

    def kill_group(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


@pytest.fixture
def serve(serving_bundles: Path, tmp_path: Path) -> Iterator[ServeProcess]:
    server = ServeProcess(tmp_path, serving_bundles)
    try:
        server.wait_started()
        yield server
    finally:
        server.kill_group()  # after a clean stop only strays, if any, are left to kill


def _recommend(url: str, history: list[str]) -> int:
    # A fresh connection per request: the kernel hands each to whichever worker accepts first.
    with httpx.Client(base_url=url, timeout=10.0) as client:
        return client.post("/recommend", json={"history": history, "k": 5}).status_code


def _answered_per_worker(metrics_dir: Path) -> dict[str, float]:
    """/recommend requests counted by each worker, read from its own file in the shared dir."""
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        pid = path.stem.removeprefix("counter_")
        counts[pid] = sum(
            sample.value
            for family in MultiProcessCollector.merge([str(path)])
            for sample in family.samples
            if sample.name == "intentrec_requests_total"
            and sample.labels.get("endpoint") == "recommend"
        )
    return counts


def _scrape(url: str) -> tuple[float, float, dict[str, float]]:
    """(recommend requests over all outcomes, `total` stage latency count, bundle_info series)."""
    with httpx.Client(base_url=url, timeout=10.0) as client:
        response = client.get("/metrics")
    response.raise_for_status()
    requests = latency_count = 0.0
    bundle_info = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "intentrec_requests_total":
                if sample.labels["endpoint"] == "recommend":
                    requests += sample.value
            elif sample.name == "intentrec_stage_latency_seconds_count":
                if sample.labels["stage"] == "total":
                    latency_count += sample.value
            elif sample.name == "intentrec_bundle_info":
                bundle_info[sample.labels["version"]] = sample.value
    return requests, latency_count, bundle_info


def test_metrics_sum_over_all_workers(serve: ServeProcess, serving_bundles: Path) -> None:
    bundle = load_bundle(serving_bundles)
    history = [bundle.catalog.external_ids[i] for i in (1, 2, 3)]
    metrics_dir = serve.metrics_dir()
    sent = 0
    with ThreadPoolExecutor(CLIENTS) as pool:
        # Rounds until both workers have answered some: only then can one worker's /metrics
        # miss the other's counts.
        while sent < MAX_REQUESTS:
            statuses = list(pool.map(_recommend, [serve.url] * ROUND, [history] * ROUND))
            assert statuses == [200] * ROUND
            sent += ROUND
            per_worker = _answered_per_worker(metrics_dir)
            if len(per_worker) == WORKERS and all(per_worker.values()):
                break
    assert sum(per_worker.values()) == sent
    assert len(per_worker) == WORKERS and all(per_worker.values()), per_worker

    for _ in range(3 * WORKERS):  # fresh connections: the scrapes land on either worker
        requests, latency_count, bundle_info = _scrape(serve.url)
        assert requests == sent
        assert latency_count == sent
        assert bundle_info == {bundle.manifest.version: 1.0}

    assert serve.stop() == 0, serve.log()[-3000:]
    assert not metrics_dir.exists()  # serve removes the directory it made
