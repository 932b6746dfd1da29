"""Refine results in Redis, keyed by everything the answer depends on."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Sequence
from typing import Any

from serving.clients.history_store import refine_index_key

_PREFIX = "intentrec:refine:"


def cache_key(
    *,
    model_version: str,
    llm_model: str,
    blend: float,
    fixed_top: int,
    history_ids: Sequence[int],
    candidate_ids: Sequence[int],
) -> str:
    """Key of one refine answer: the bundle, the LLM, how its answer is used, and the input."""
    payload = json.dumps(
        [
            model_version,
            llm_model,
            round(blend, 6),
            fixed_top,
            list(history_ids),
            list(candidate_ids),
        ],
        separators=(",", ":"),
    )
    return _PREFIX + hashlib.sha256(payload.encode()).hexdigest()[:32]


def _swallow(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()


class RefineCache:
    """The refined order (internal ids of all candidates) per key, with a TTL.

    Redis trouble never fails a request: a read that errors or exceeds its timeout is a miss and a
    failed write is forgotten.
    """

    def __init__(self, redis: Any, ttl_s: int, write_timeout_s: float = 1.0) -> None:
        self._redis = redis  # redis.asyncio.Redis, without a socket timeout of its own
        self._ttl_s = ttl_s
        self._write_timeout_s = write_timeout_s

    async def get(self, key: str, timeout_s: float) -> list[int] | None:
        if timeout_s <= 0:
            return None
        lookup = asyncio.ensure_future(self._redis.get(key))
        # asyncio.wait does not wait for a cancelled lookup to unwind: a slow Redis costs at
        # most `timeout_s`.
        try:
            await asyncio.wait({lookup}, timeout=timeout_s)
        except asyncio.CancelledError:
            lookup.cancel()
            raise
        if not lookup.done():
            lookup.cancel()
            lookup.add_done_callback(_swallow)
            return None
        if lookup.cancelled() or lookup.exception() is not None:
            return None  # any Redis failure is a miss, by design
        raw = lookup.result()
        if raw is None:
            return None
        try:
            value = json.loads(raw)
        except ValueError:
            return None
        if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
            return None
        return value

    async def set(self, key: str, order: Sequence[int], user_id: str | None = None) -> None:
        """Store the order; with `user_id`, also list the key in the user's refine index so
        that forgetting the user erases it."""
        try:
            async with asyncio.timeout(self._write_timeout_s):
                async with self._redis.pipeline(transaction=False) as pipe:
                    pipe.set(key, json.dumps(list(order)), ex=self._ttl_s)
                    if user_id is not None:
                        index = refine_index_key(user_id)
                        pipe.sadd(index, key)
                        pipe.expire(index, self._ttl_s)
                    await pipe.execute()
        except Exception:  # a lost cache write only costs a later LLM call
            return
