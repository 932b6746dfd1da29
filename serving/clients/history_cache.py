"""A local copy of recently read histories, kept coherent by Redis (server-assisted
client-side caching, broadcast mode).

`InvalidationListener` holds one connection per process on which Redis announces the name of
every key written under the store's prefix (`CLIENT TRACKING ON BCAST PREFIX ... REDIRECT` to
itself, RESP2 pub/sub on `__redis__:invalidate`); each name evicts that entry, whichever process
wrote it. The cache answers only while that connection is subscribed: when it drops, or Redis
restarts, or Redis flushes, the cache is emptied, because an invalidation may have been missed.

A read races with a write whose invalidation overtakes the read's reply (they travel on two
connections). `begin_read` therefore leaves a token per key that any invalidation removes, and
`finish_read` keeps the reply only if its token is still there. Entries also expire after
`ttl_s`, a bound on staleness if the listener's connection hangs without failing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import Any

from redis.exceptions import RedisError, ResponseError

from serving.metrics import Metrics

log = logging.getLogger(__name__)

INVALIDATION_CHANNEL = "__redis__:invalidate"


class HistoryCache:
    def __init__(self, max_entries: int, ttl_s: float, metrics: Metrics) -> None:
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.metrics = metrics
        self._entries: OrderedDict[str, tuple[tuple[str, ...], float]] = OrderedDict()
        self._pending: dict[str, object] = {}
        self._active = False

    @property
    def active(self) -> bool:
        return self._active

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> tuple[str, ...] | None:
        entry = self._entries.get(key)
        if entry is None:
            self.metrics.count_history_cache("miss")
            return None
        items, expires = entry
        if time.monotonic() >= expires:
            del self._entries[key]
            self.metrics.count_history_cache("expired")
            return None
        self._entries.move_to_end(key)
        self.metrics.count_history_cache("hit")
        return items

    def begin_read(self, key: str) -> object | None:
        """A token for a read about to be sent to Redis; None while the cache is inactive."""
        if not self._active:
            return None
        token = self._pending[key] = object()
        return token

    def finish_read(self, key: str, token: object, items: list[str]) -> None:
        """Keep what the read returned unless the key was written since it began."""
        if self._pending.get(key) is not token:
            return
        del self._pending[key]
        self._entries[key] = (tuple(items), time.monotonic() + self.ttl_s)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def abandon_read(self, key: str, token: object) -> None:
        if self._pending.get(key) is token:
            del self._pending[key]

    def invalidate(self, key: str) -> bool:
        """Drop the key's entry and any read in progress; whether there was an entry."""
        self._pending.pop(key, None)
        if self._entries.pop(key, None) is None:
            return False
        self.metrics.count_history_cache("invalidated")
        return True

    def activate(self) -> None:
        self._active = True
        self.metrics.history_cache_active.set(1)

    def deactivate(self) -> None:
        """Invalidations may be missed from now on: forget everything, cache nothing."""
        self._active = False
        self.metrics.history_cache_active.set(0)
        self.clear()

    def clear(self) -> None:
        self._entries.clear()
        self._pending.clear()


class InvalidationListener:
    """Keeps the cache's invalidation connection up; the cache is active only while it is."""

    def __init__(
        self,
        connection_factory: Any,
        prefix: str,
        cache: HistoryCache,
        retry_s: float,
        connect_timeout_s: float,
    ) -> None:
        self.connection_factory = connection_factory
        self.prefix = prefix
        self.cache = cache
        self.retry_s = retry_s
        self.connect_timeout_s = connect_timeout_s
        self.subscribed = asyncio.Event()

    @classmethod
    def for_client(
        cls,
        client: Any,
        prefix: str,
        cache: HistoryCache,
        retry_s: float,
        connect_timeout_s: float,
    ) -> InvalidationListener:
        """A listener whose connections are made like those of `client`'s pool, but in RESP2:
        the invalidations then come as pub/sub messages on the listener's own connection."""
        pool = client.connection_pool
        kwargs = pool.connection_kwargs | {"protocol": 2}
        return cls(
            lambda: pool.connection_class(**kwargs), prefix, cache, retry_s, connect_timeout_s
        )

    async def _subscribe(self, connection: Any) -> None:
        async with asyncio.timeout(self.connect_timeout_s):
            await connection.connect()
            await connection.send_command("CLIENT", "ID")
            client_id = await connection.read_response()
            await connection.send_command(
                "CLIENT", "TRACKING", "ON", "REDIRECT", client_id, "BCAST", "PREFIX", self.prefix
            )
            await connection.read_response()
            await connection.send_command("SUBSCRIBE", INVALIDATION_CHANNEL)
            await connection.read_response()

    async def _listen(self, connection: Any) -> None:
        while True:
            message = await connection.read_response()
            if not isinstance(message, list) or len(message) != 3 or message[0] != "message":
                continue
            keys = message[2]
            if keys is None:  # FLUSHALL, FLUSHDB, or a key table reset: everything may change
                self.cache.clear()
                continue
            for key in keys:
                self.cache.invalidate(key)

    async def run(self) -> None:
        reported = False  # one warning per outage, not one per retry
        while True:
            connection = self.connection_factory()
            try:
                try:
                    await self._subscribe(connection)
                except ResponseError as exc:  # Redis before 6 has no CLIENT TRACKING
                    log.warning("history cache off: Redis refused client tracking (%s)", exc)
                    return
                self.cache.activate()
                self.subscribed.set()
                if reported:
                    log.warning("history cache invalidations back; cache on")
                    reported = False
                await self._listen(connection)
            except (RedisError, OSError, TimeoutError) as exc:
                if not reported:
                    log.warning("history cache off: invalidations lost (%s); retrying", exc)
                    reported = True
            finally:
                self.subscribed.clear()
                self.cache.deactivate()
                await connection.disconnect()
            await asyncio.sleep(self.retry_s)
