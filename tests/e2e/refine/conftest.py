"""A real embedded vLLM server (SmolLM2-135M-Instruct), started once per test run.

The tests that need it are marked `llm`; they are skipped, with the reason, only when the `llm`
group is not installed (no python with vllm: run scripts/install-llm.sh).

The same model answers a score-mode call in ~0.3 s on a CPU with native bfloat16 and in several
seconds on an AVX2-only one, or slower still beside other work. The tests therefore measure the
served model on their own prompts first (`llm_speed`) and derive every budget, call limit and
drain from that measurement: they test behaviour (deadline kept, top 5 fixed, a permutation, the
cache filled, shed rather than queued), never a speed.

`INTENTREC_TEST_LLM_CPUS` (e.g. `0`) pins the server to those CPUs, and
`INTENTREC_TEST_LLM_NEIGHBOURS` (e.g. `2`) starts that many busy processes on the same CPUs for
the session: CI runs the refine tests once more that way, so a test that depends on the model's
speed fails on any machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from serving.clients.embedded_redis import EmbeddedRedis
from serving.refine import LLMRefiner, build_refiner
from serving.refine.client import LLMClient
from serving.refine.contract import Candidate
from serving.refine.server import SERVED_NAME, EmbeddedLLMServer, LLMServerError, llm_python
from serving.refine.settings import LLMServerSettings, RefineSettings
from serving.refine.stage import InvalidOutput, ask_llm
from tests.e2e.refine.speed import LLMSpeed

ROOT = Path(__file__).resolve().parents[3]
ITEM_FILE = ROOT / "data" / "ml-100k" / "ml-100k.item"
# The converted model is kept between runs (the conversion takes a minute); nothing else is.
MODEL_CACHE = ROOT / ".cache" / "intentrec" / "llm-tests"


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
def llm_server_settings() -> LLMServerSettings:
    settings = LLMServerSettings(data_dir=MODEL_CACHE, llm_port=_free_port())
    try:
        llm_python(settings)
    except LLMServerError as exc:
        pytest.skip(f"the `llm` group is not installed: {exc}")
    return settings


@pytest.fixture(scope="session")
def llm_settings(llm_server_settings: LLMServerSettings) -> RefineSettings:
    """The refine stage's settings, pointed at the embedded server."""
    return RefineSettings(
        llm_base_url=f"http://127.0.0.1:{llm_server_settings.llm_port}/v1", llm_model=SERVED_NAME
    )


@pytest.fixture(scope="session")
def slowed_cpus() -> Iterator[str | None]:
    """The CPUs the LLM server is pinned to, with busy neighbours on them, when CI asks for it."""
    cpus = os.environ.get("INTENTREC_TEST_LLM_CPUS") or None
    neighbours = int(os.environ.get("INTENTREC_TEST_LLM_NEIGHBOURS") or 0)
    busy = [
        subprocess.Popen(
            ["taskset", "-c", cpus or "0", sys.executable, "-c", "while True: pass"],
            start_new_session=True,
        )
        for _ in range(neighbours)
    ]
    try:
        yield cpus
    finally:
        for process in busy:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def llm_server(
    llm_server_settings: LLMServerSettings,
    llm_settings: RefineSettings,
    slowed_cpus: str | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[EmbeddedLLMServer]:
    server = EmbeddedLLMServer(
        llm_server_settings.model_copy(update={"llm_cpus": slowed_cpus}),
        max_logprobs=llm_settings.refine_top_logprobs,
        log_path=tmp_path_factory.mktemp("llm-log") / "vllm.log",
    )
    server.start()
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def llm_speed(
    llm_server: EmbeddedLLMServer, llm_settings: RefineSettings, catalog: list[Candidate]
) -> LLMSpeed:
    """Warm the server up, then time calls on prompts shaped like the tests' (default settings,
    10 history items, 20 candidates), each for a history no test uses."""

    async def measure() -> LLMSpeed:
        settings = llm_settings
        client = LLMClient(llm_server.base_url, SERVED_NAME, timeout_s=900)
        began = time.perf_counter()
        await _warm_up(client, catalog)
        first_call_ms = (time.perf_counter() - began) * 1000
        calls = []
        for start in (1100, 1140, 1180, 1220, 1260, 1300):
            history, candidates = catalog[start : start + 10], catalog[start + 10 : start + 30]
            began = time.perf_counter()
            with contextlib.suppress(InvalidOutput):
                tail = candidates[settings.refine_fixed_top :]
                await ask_llm(client, settings, history, tail)
            calls.append((time.perf_counter() - began) * 1000)
        await client.aclose()
        return LLMSpeed(first_call_ms, fastest_ms=min(calls), slowest_ms=max(calls))

    speed = asyncio.run(measure())
    print(f"\nembedded LLM on this machine: {speed}")  # shown with -s, and in CI's log on failure
    return speed


async def _warm_up(client: LLMClient, catalog: list[Candidate]) -> None:
    """The first calls take many seconds."""
    for start in (1500, 1506):  # items no test uses
        history, tail = catalog[start : start + 3], catalog[start + 3 : start + 6]
        with contextlib.suppress(InvalidOutput):
            await ask_llm(client, RefineSettings(), history, tail)


@pytest.fixture
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = EmbeddedRedis(tmp_path_factory.mktemp("r"), fsync="no")
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
async def make_refiner(
    llm_server: EmbeddedLLMServer,
    llm_settings: RefineSettings,
    llm_speed: LLMSpeed,
    redis_url: str,
    tmp_path: Path,
) -> AsyncIterator:
    """Builds refiners on the real server and a real redis-server; closes them afterwards.
    A call may take as long as `llm_speed` says the model needs, unless a test says otherwise."""
    made: list[tuple[LLMRefiner, aioredis.Redis]] = []

    def make(**overrides: object) -> LLMRefiner:
        settings = llm_settings.model_copy(
            update={"refine_call_timeout_s": llm_speed.call_timeout_s, **overrides}
        )
        redis = aioredis.from_url(redis_url)
        refiner = build_refiner(settings, redis, tmp_path / "lift.json")
        assert isinstance(refiner, LLMRefiner)
        made.append((refiner, redis))
        return refiner

    yield make
    for refiner, redis in made:
        await refiner.aclose()
        await redis.aclose()
    await asyncio.sleep(0)
