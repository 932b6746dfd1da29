"""Per-user histories and event idempotency keys in Redis (redis.asyncio).

Keys carry the user id as a hash tag, so a user's list and event ids sit in one slot (Redis
Cluster ready) and the append script touches a single slot. A few consecutive failures open a
short breaker: for `retry_s` requests skip the store instead of each paying a timeout, and a
background probe (`probe`) closes it again. A single slow call (a stall on a busy host) degrades
only its own request.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from serving.clients.history_cache import HistoryCache
from serving.metrics import Metrics

# Every key of the store starts with this: the history cache's invalidations are asked for it.
KEY_PREFIX = "intentrec:{"

# KEYS[1] history list, KEYS[2] (optional) event id key; ARGV item, cap, ttl.
_APPEND = """
if #KEYS == 2 and not redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[3]) then
  return 0
end
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
return 1
"""


class StoreUnavailable(Exception):
    """Redis is down, slow or refusing; the message says which operation."""


@dataclass(frozen=True, slots=True)
class NewEvent:
    user_id: str
    item_id: str
    event_id: str | None


def _history_key(user_id: str) -> str:
    return f"{KEY_PREFIX}{user_id}}}:history"


def _event_key(user_id: str, event_id: str) -> str:
    return f"{KEY_PREFIX}{user_id}}}:event:{event_id}"


def refine_index_key(user_id: str) -> str:
    """The set of refine cache keys written for this user's requests: a refine key is a hash of
    the history, so only this index finds a user's entries when the user is forgotten."""
    return f"{KEY_PREFIX}{user_id}}}:refine"


def _user_pattern(user_id: str) -> str:
    """SCAN pattern of every key of the user, the id's glob characters escaped."""
    escaped = "".join(f"\\{c}" if c in "*?[]\\" else c for c in user_id)
    return f"{KEY_PREFIX}{escaped}}}:*"


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What `forget` erased."""

    history_items: int
    event_ids: int
    refine_entries: int
    cached_histories: int  # this process's copies; the others drop theirs on Redis's broadcast


def connect(url: str, connect_timeout_ms: float, pool_size: int) -> aioredis.Redis:
    """A client without a socket timeout: every caller bounds its own calls (asyncio.timeout).

    redis-py wraps each command's write in `asyncio.wait_for` when a socket timeout is set, and
    on Python 3.11 that is a new task and two extra event-loop turns per command. The pool is a
    blocking one of `pool_size` connections, opened up front (`HistoryStore.open_connections`):
    a burst of requests then waits a moment for a free connection instead of opening dozens at
    once, each a few round trips, inside their read budgets (32 at once took ~30 ms here, the
    default read timeout).
    """
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=None,  # the wait for a connection is bounded by each caller's own deadline
        socket_timeout=None,
        socket_connect_timeout=connect_timeout_ms / 1000.0,
        decode_responses=True,
        health_check_interval=0,
        retry_on_timeout=False,
    )
    return aioredis.Redis.from_pool(pool)


class HistoryStore:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        max_len: int,
        event_ttl_s: int,
        timeout_ms: float,
        write_timeout_ms: float,
        retry_s: float,
        metrics: Metrics,
        failures_to_open: int = 3,
        cache: HistoryCache | None = None,
    ) -> None:
        self.client = client
        self.cache = cache
        self.max_len = max_len
        self.event_ttl_s = event_ttl_s
        self.timeout_s = timeout_ms / 1000.0
        self.write_timeout_s = write_timeout_ms / 1000.0
        self.retry_s = retry_s
        self.metrics = metrics
        self.failures_to_open = failures_to_open
        self._failures = 0
        self._down_until = 0.0
        self._append = client.register_script(_APPEND)

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _trip(self, operation: str, exc: BaseException) -> StoreUnavailable:
        self.metrics.redis_errors.labels(operation=operation).inc()
        self._failures += 1
        if self._failures >= self.failures_to_open:
            self._down_until = time.monotonic() + self.retry_s
        return StoreUnavailable(f"history store {operation} failed: {type(exc).__name__}: {exc}")

    def _check(self, operation: str) -> None:
        if not self.available:
            raise StoreUnavailable(f"history store unavailable ({operation} skipped, retrying)")

    async def recent(self, user_id: str, n: int, timeout_ms: float | None = None) -> list[str]:
        """The user's last n item ids, oldest first."""
        key = _history_key(user_id)
        cache = self.cache
        token = None
        if cache is not None and cache.active and 0 < n <= self.max_len:
            cached = cache.get(key)
            if cached is not None:
                return list(cached[-n:])
            if n == self.max_len:  # the whole capped list: what later reads of any n can use
                token = cache.begin_read(key)
        self._check("read")
        timeout = self.timeout_s if timeout_ms is None else min(self.timeout_s, timeout_ms / 1000)
        try:
            async with asyncio.timeout(max(timeout, 0.0005)):
                items = await self.client.lrange(key, -n, -1)
        except BaseException as exc:  # cancelled too: the read's token must not outlive it
            if token is not None:
                cache.abandon_read(key, token)
            if isinstance(exc, RedisError | OSError | TimeoutError):
                raise self._trip("read", exc) from exc
            raise
        if token is not None:
            cache.finish_read(key, token, items)
        self._failures = 0
        return items

    async def history(self, user_id: str) -> list[str]:
        return await self.recent(user_id, self.max_len)

    async def append(self, events: Sequence[NewEvent]) -> tuple[int, int]:
        """Append events in order; returns (accepted, duplicates). All or an error: the caller
        answers 503 and the client retries (event ids make the retry safe)."""
        self._check("write")
        try:
            async with asyncio.timeout(self.write_timeout_s * (1 + len(events) / 1000)):
                async with self.client.pipeline(transaction=False) as pipe:
                    for event in events:
                        keys = [_history_key(event.user_id)]
                        if event.event_id is not None:
                            keys.append(_event_key(event.user_id, event.event_id))
                        await self._append(
                            keys=keys,
                            args=[event.item_id, self.max_len, self.event_ttl_s],
                            client=pipe,
                        )
                    results = await pipe.execute()
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._trip("write", exc) from exc
        finally:
            # Redis will announce these writes to every process's listener; this process must
            # not answer from its copy in the meantime (nor after a write of unknown outcome).
            if self.cache is not None:
                for event in events:
                    self.cache.invalidate(_history_key(event.user_id))
        self._failures = 0
        accepted = sum(int(r) for r in results)
        return accepted, len(results) - accepted

    async def forget(self, user_id: str, timeout_s: float) -> Forgotten:
        """Erase every key of the user (history, event ids, refine index) and the refine cache
        entries the index names; all or an error (StoreUnavailable), and a retry is safe."""
        self._check("forget")
        history_key, index_key = _history_key(user_id), refine_index_key(user_id)
        # Counted before Redis deletes: its broadcast may reach this process's listener, and
        # drop the copy, before the DEL's own reply does.
        cached = int(self.cache.invalidate(history_key)) if self.cache is not None else 0
        try:
            async with asyncio.timeout(timeout_s):
                keys = [k async for k in self.client.scan_iter(_user_pattern(user_id), 1000)]
                async with self.client.pipeline(transaction=False) as pipe:
                    pipe.llen(history_key)
                    pipe.smembers(index_key)
                    history_items, refine_keys = await pipe.execute()
                refine_entries = await self.client.delete(*refine_keys) if refine_keys else 0
                if keys:
                    await self.client.delete(*keys)
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._trip("forget", exc) from exc
        finally:
            if self.cache is not None:  # a read that began meanwhile must not keep its reply
                self.cache.invalidate(history_key)
        self._failures = 0
        event_ids = sum(1 for k in keys if k.startswith(f"{KEY_PREFIX}{user_id}}}:event:"))
        return Forgotten(int(history_items), event_ids, int(refine_entries), cached)

    async def some_users(self, limit: int, timeout_s: float) -> list[str]:
        """Up to `limit` ids of users with a stored history, in no particular order (the demo
        page's picker); what one bounded SCAN finds."""
        self._check("read")
        suffix = "}:history"
        users: list[str] = []
        try:
            async with asyncio.timeout(timeout_s):
                async for key in self.client.scan_iter(f"{KEY_PREFIX}*{suffix}", 1000):
                    users.append(key[len(KEY_PREFIX) : -len(suffix)])
                    if len(users) == limit:
                        break
        except (RedisError, OSError, TimeoutError) as exc:
            raise self._trip("read", exc) from exc
        return users

    async def open_connections(self, timeout_s: float) -> int:
        """Open the pool's connections now (at start-up) so that the first burst of requests
        finds them ready; returns how many are open. A store that is down opens none: the
        requests degrade and the connections open later, one by one."""
        pool = self.client.connection_pool
        taken = []
        try:
            async with asyncio.timeout(timeout_s):
                while len(taken) < pool.max_connections:
                    taken.append(await pool.get_connection())
        except (RedisError, OSError, TimeoutError):
            pass
        finally:
            for connection in taken:
                await pool.release(connection)
        return len(taken)

    async def probe(self) -> bool:
        """Ping now (background health loop); closes the breaker on success."""
        try:
            async with asyncio.timeout(max(self.timeout_s, 0.2)):
                await self.client.ping()
        except (RedisError, OSError, TimeoutError) as exc:
            self._trip("ping", exc)
            return False
        self._failures = 0
        self._down_until = 0.0
        return True

    async def aclose(self) -> None:
        await self.client.aclose()
