"""Fixtures for the serving e2e tests: real bundles, a real uvicorn server, a real redis-server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn

from models_export.bundle import resolve_bundle, switch_current
from serving.app import create_app
from serving.settings import Settings


@pytest.fixture(scope="session")
def serving_bundles(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """A bundles root with two real versions, `a` (current) and `b`.

    `b` is `a` under another version name: reload tests need two bundles to switch between, and
    a second training run would cost a minute for nothing the swap depends on.
    """
    reuse = os.environ.get("INTENTREC_TEST_BUNDLE")  # an exported bundle, to iterate quickly
    if reuse:
        source = resolve_bundle(reuse)
    else:
        try:
            source = resolve_bundle(request.getfixturevalue("tiny_bundle"))
        except pytest.FixtureLookupError:
            source = None
    if source is None:
        from models_export.export import export_run

        run_dir = request.getfixturevalue("tiny_run_sasrec")
        out = tmp_path_factory.mktemp("exported")
        source = export_run(run_dir, out, switch=False).bundle_dir
    root = tmp_path_factory.mktemp("bundles")
    for name in ("a", "b"):
        shutil.copytree(source, root / name)
        manifest_file = root / name / "manifest.json"
        manifest = json.loads(manifest_file.read_text())
        manifest["version"] = f"{manifest['version']}-{name}"
        manifest_file.write_text(json.dumps(manifest))
    switch_current(root, root / "a")
    return root


@pytest.fixture(scope="session")
def catalog(serving_bundles: Path):
    """The catalog of the served bundles (`a` and `b` share it)."""
    from models_export.bundle import load_bundle

    return load_bundle(serving_bundles).catalog


# The shared 2-core test machine stalls processes for tens of ms; the production defaults (Redis
# 30 ms, budget 50 ms) would turn those stalls into spurious degraded answers. Tests of slowness
# and budgets set their own.
TEST_REDIS_TIMEOUT_MS = 500
TEST_BUDGET_MS = 2000


@pytest.fixture(scope="session")
def serving_disen_bundle(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    """A real multi-intent (K = 2) bundle: exercises the merge of per-intent results."""
    try:
        return resolve_bundle(request.getfixturevalue("tiny_bundle_disen"))
    except pytest.FixtureLookupError:
        from models_export.export import export_run

        run_dir = request.getfixturevalue("tiny_run_disen")
        out = tmp_path_factory.mktemp("exported-disen")
        return export_run(run_dir, out, switch=False).bundle_dir


def switch_to(bundles: Path, name: str) -> None:
    switch_current(bundles, bundles / name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """The real app under uvicorn in a thread, reachable over HTTP on 127.0.0.1."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout_s: float = 60.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("server thread exited during start-up")
            if time.monotonic() > deadline:
                raise TimeoutError("server did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)

    def client(self, **kwargs) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10.0, **kwargs)


ServerFactory = Callable[..., "contextmanager[LiveServer]"]


@pytest.fixture
def start_server(serving_bundles: Path, tmp_path: Path) -> ServerFactory:
    """`with start_server(**settings) as server:` a fresh server; data in this test's tmp dir."""

    @contextmanager
    def start(**overrides) -> Iterator[LiveServer]:
        values = {
            "bundle_dir": serving_bundles,
            "data_dir": tmp_path / "data",
            "redis_timeout_ms": TEST_REDIS_TIMEOUT_MS,
            "default_budget_ms": TEST_BUDGET_MS,
        } | overrides
        server = LiveServer(Settings(**values))
        server.start()
        try:
            yield server
        finally:
            server.stop()

    return start


@pytest.fixture(scope="module")
def server(serving_bundles: Path, tmp_path_factory) -> Iterator[LiveServer]:
    """One server shared by a module's read-mostly tests."""
    data_dir = tmp_path_factory.mktemp("data")
    live = LiveServer(
        Settings(
            bundle_dir=serving_bundles,
            data_dir=data_dir,
            redis_timeout_ms=TEST_REDIS_TIMEOUT_MS,
            default_budget_ms=TEST_BUDGET_MS,
        )
    )
    live.start()
    yield live
    live.stop()
