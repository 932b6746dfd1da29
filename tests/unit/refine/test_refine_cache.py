"""The refine cache: a real redis-server for the round trip; fakes only for Redis faults a
healthy server cannot show (a hang, an error)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from serving.clients.embedded_redis import EmbeddedRedis
from serving.refine.cache import RefineCache


@pytest.fixture
def redis_url(tmp_path: Path):
    server = EmbeddedRedis(tmp_path, fsync="no")
    yield server.start()
    server.stop()


async def test_round_trip_and_garbage_values_on_a_real_redis(redis_url: str) -> None:
    redis = aioredis.from_url(redis_url, decode_responses=True)
    try:
        cache = RefineCache(redis, ttl_s=60)
        assert await cache.get("k", 1.0) is None
        await cache.set("k", [3, 1, 2])
        assert await cache.get("k", 1.0) == [3, 1, 2]
        assert 0 < await redis.ttl("k") <= 60
        await redis.set("bad", "not json")
        await redis.set("odd", '{"a": 1}')
        assert await cache.get("bad", 1.0) is None
        assert await cache.get("odd", 1.0) is None
    finally:
        await redis.aclose()


class HangingRedis:  # stands in for a Redis that stopped answering
    async def get(self, key: str) -> None:
        await asyncio.Event().wait()

    async def set(self, *args: object, **kwargs: object) -> None:
        await asyncio.Event().wait()


class FailingRedis:  # stands in for a Redis that refuses every command
    async def get(self, key: str) -> None:
        raise ConnectionError("down")

    async def set(self, *args: object, **kwargs: object) -> None:
        raise ConnectionError("down")


async def test_a_hanging_or_failing_redis_is_a_miss() -> None:
    cache = RefineCache(HangingRedis(), ttl_s=60, write_timeout_s=0.05)
    assert await cache.get("k", 0.01) is None
    # The service's client has no socket timeout: the cache's own bound ends a hung write.
    await asyncio.wait_for(cache.set("k", [1]), timeout=5.0)
    assert await cache.get("k", 0.0) is None
    failing = RefineCache(FailingRedis(), ttl_s=60)
    await failing.set("k", [1])  # swallowed: a lost write only costs a later LLM call
    assert await failing.get("k", 1.0) is None
