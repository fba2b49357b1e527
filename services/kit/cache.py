"""A page cache in Redis shared by every instance: versioned keys per owner, single flight, fail open.

The protocol (the reasoning is in docs/caching.md):

1. **Versions.** Each owner has a version token, a random string under ``<prefix>v:<owner>``.
   A page lives under ``<prefix>p:<owner>:<token>:<variant>`` with a TTL. A read fetches the
   token and the page in one script call (creating a token when there is none).
2. **Writes.** After its transaction commits, and before it answers, a write replaces the
   owner's token (:meth:`PageCache.invalidate`): the next read, on any instance, looks for a
   page under the new token. Pages under the old token are deleted too (an index set per
   owner), and would be unreachable anyway. A page is stored only if the token it was read
   under is still current, so a slow reader cannot put an old page back.
3. **Deleted accounts** get the token ``gone`` (:meth:`PageCache.forget`): never cached again,
   and no later write's invalidation replaces it.
4. **Single flight.** Concurrent misses of one page in a process share one load; across
   processes the first takes a lock (``SET NX PX``) and loads, the others poll for its page
   for at most ``lock_wait`` and then load themselves. A holder that dies loses the lock after
   ``lock_ttl``. An in-process flight is keyed by the token, so a read that starts after a
   write's invalidation never joins a load that started before it.
5. **Fail open.** Every Redis call has a short timeout. A failure opens a breaker: for
   ``retry_after`` seconds every read goes straight to the loader (counted as a bypass), then
   Redis is tried again. An invalidation that could not be sent is kept (bounded) and sent
   before the cache is used again (and by a background task as soon as Redis answers); if too
   many were lost, this process does not trust the cache until every page that might be stale
   has expired. An instance that saw Redis fail waits ``retry_after`` once it answers again, so
   that the other instances' kept invalidations arrive first.

Without a Redis URL every read loads (nothing is cached), with the same ETags.

The module runs past 300 lines because its parts (read, fill, wait, invalidate, the
breaker and the kept invalidations) share one state and one argument about correctness;
split, each would reach into the others' internals.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from services.kit.logging import get_logger
from services.kit.redis_link import RedisLink, ReplyError, Script

log = get_logger("kit.cache")

GONE = "gone"  # the version token of a deleted owner: nothing is cached for them again
MAX_PENDING = 10_000  # invalidations kept while Redis is unreachable

# KEYS: version. ARGV: fresh token, version TTL (ms), page key prefix, variant, lock key prefix.
# Returns {token, page or false, lock held or 0}.
_READ = """
local v = redis.call('GET', KEYS[1])
if not v then
  v = ARGV[1]
  redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
end
if v == 'gone' then return {v, false, 0} end
return {v, redis.call('GET', ARGV[3] .. v .. ':' .. ARGV[4]), redis.call('EXISTS', ARGV[5] .. v .. ':' .. ARGV[4])}
"""

# KEYS: version, index. ARGV: token, page key, value, page TTL (ms). Stores only under the current token.
_STORE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', ARGV[2], ARGV[3], 'PX', ARGV[4])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
"""

# KEYS: version, index. ARGV: new token (or 'gone'), its TTL (ms). A deleted owner stays deleted.
_INVALIDATE = """
if ARGV[1] ~= 'gone' and redis.call('GET', KEYS[1]) == 'gone' then return -1 end
local pages = redis.call('SMEMBERS', KEYS[2])
for i = 1, #pages do redis.call('DEL', pages[i]) end
redis.call('DEL', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return #pages
"""

# KEYS: lock. ARGV: our lock value. Releases the lock only if we still hold it.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

_READ_SCRIPT, _STORE_SCRIPT, _INVALIDATE_SCRIPT, _RELEASE_SCRIPT = map(Script, (_READ, _STORE, _INVALIDATE, _RELEASE))


@dataclass(frozen=True)
class CachedPage:
    """A page's bytes and its strong ETag (a hash of the bytes)."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> CachedPage:
        return cls(body, '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"')

    def encode(self) -> bytes:
        return self.etag.encode() + b"\n" + self.body

    @classmethod
    def decode(cls, value: bytes) -> CachedPage:
        etag, _, body = value.partition(b"\n")
        return cls(body, etag.decode())


@dataclass(frozen=True)
class CacheSettings:
    """How a :class:`PageCache` talks to Redis; the service's settings fill it."""

    url: str | None
    prefix: str = "quartet:"
    page_ttl_seconds: float = 60.0
    version_ttl_seconds: float = 86_400.0
    timeout_seconds: float = 1.0
    retry_after_seconds: float = 2.0
    lock_ttl_seconds: float = 2.0
    lock_wait_seconds: float = 1.0


@dataclass(frozen=True)
class CacheMetrics:
    hits: Counter
    misses: Counter
    stampede_waits: Counter
    loads: Counter
    invalidations: Counter
    bypasses: Counter
    breaker_open: Gauge

    @classmethod
    def build(cls) -> CacheMetrics:
        """Unregistered: :meth:`PageCache.register` puts them on the app's registry."""
        return cls(
            hits=Counter("page_cache_hits_total", "Pages answered from Redis.", registry=None),
            misses=Counter("page_cache_misses_total", "Page reads that found nothing current in Redis.", registry=None),
            stampede_waits=Counter(
                "page_cache_stampede_waits_total",
                "Misses that waited for another reader's load (in this process or another) instead of loading.",
                registry=None,
            ),
            loads=Counter("page_cache_loads_total", "Pages built by the loader (the database query).", registry=None),
            invalidations=Counter(
                "page_cache_invalidations_total", "Owners whose pages were invalidated by a write.", registry=None
            ),
            bypasses=Counter(
                "page_cache_bypasses_total",
                "Reads that skipped Redis (down, slow, breaker open, or not trusted yet) and loaded.",
                ["reason"],
                registry=None,
            ),
            breaker_open=Gauge("page_cache_breaker_open", "1 while Redis is being bypassed.", registry=None),
        )


class RedisUnavailable(Exception):
    """A Redis call failed or timed out."""


class PageCache:
    """Pages per owner and variant (``"all:10"``), shared through Redis by every instance."""

    def __init__(self, settings: CacheSettings) -> None:
        self._settings = settings
        self.metrics = CacheMetrics.build()
        # One pipelined connection (services/kit/redis_link.py): a call is answered within the
        # timeout or fails; the breaker below decides when to try again, not the client.
        self._redis = RedisLink(settings.url, timeout=settings.timeout_seconds) if settings.url else None
        # Fresh version tokens: unique per process (a random seed) and per call (a counter).
        self._seed, self._counter = secrets.token_hex(8), itertools.count()
        self._flights: dict[tuple[str, str, str], asyncio.Future[CachedPage]] = {}
        self._open_until = 0.0
        self._tripped = False
        self._pending: dict[str, str] = {}  # owner -> token to set once Redis answers again
        self._distrust_until = 0.0
        self._flushing = asyncio.Lock()
        # Any page stored before a lost invalidation is gone by then (plus a reader's last store).
        self._stale_horizon = settings.page_ttl_seconds + settings.lock_ttl_seconds + settings.timeout_seconds

    @property
    def _link(self) -> RedisLink:
        assert self._redis is not None, "only called with a Redis URL"
        return self._redis

    @property
    def enabled(self) -> bool:
        return self._redis is not None

    def lost_invalidations(self) -> int:
        """Invalidations not yet sent to Redis (kept until it answers, or lost past MAX_PENDING)."""
        return len(self._pending) + (1 if self._distrust_until > time.monotonic() else 0)

    def register(self, registry: CollectorRegistry) -> None:
        for collector in vars(self.metrics).values():
            registry.register(collector)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()

    # Reads ---------------------------------------------------------------------------------------

    async def get(self, owner: str, variant: str, load: Callable[[], Awaitable[bytes]]) -> CachedPage:
        """The page ``variant`` of ``owner``: from Redis, or ``load()`` (once for concurrent misses)."""
        if not await self._usable():
            return await self._bypass(load, "unavailable")
        try:
            token, page, locked = await self._read(owner, variant)
        except RedisUnavailable:
            return await self._bypass(load, "error")
        if token == GONE:
            return await self._bypass(load, "deleted")
        if page is not None:
            self.metrics.hits.inc()
            return page
        self.metrics.misses.inc()
        flight_key = (owner, token, variant)
        flight = self._flights.get(flight_key)
        if flight is not None:
            self.metrics.stampede_waits.inc()
            return await asyncio.shield(flight)
        flight = asyncio.get_running_loop().create_future()
        self._flights[flight_key] = flight
        try:
            result = await self._fill(owner, token, variant, load, locked)
        except BaseException as error:
            flight.set_exception(error)
            flight.exception()  # retrieved: no "never retrieved" warning when nobody waited
            raise
        else:
            flight.set_result(result)
            return result
        finally:
            del self._flights[flight_key]

    async def _fill(
        self, owner: str, token: str, variant: str, load: Callable[[], Awaitable[bytes]], locked: bool
    ) -> CachedPage:
        lock_key = self._key("l", owner, token, variant)
        mine = secrets.token_hex(8)
        try:
            held = not locked and bool(
                await self._call(
                    self._link.call("SET", lock_key, mine, "NX", "PX", int(self._settings.lock_ttl_seconds * 1000))
                )
            )
        except RedisUnavailable:
            return await self._bypass(load, "error")
        if not held:
            self.metrics.stampede_waits.inc()
            waited = await self._wait_for(owner, token, variant)
            if waited is not None:
                return waited
        page = await self._load(load)
        try:
            await self._call(
                self._link.run(
                    _STORE_SCRIPT,
                    [self._version_key(owner), self._index_key(owner)],
                    [
                        token,
                        self._key("p", owner, token, variant),
                        page.encode(),
                        int(self._settings.page_ttl_seconds * 1000),
                    ],
                )
            )
            if held:
                await self._call(self._link.run(_RELEASE_SCRIPT, [lock_key], [mine]))
        except RedisUnavailable:
            pass  # the page is answered all the same; the lock expires by itself
        return page

    async def _wait_for(self, owner: str, token: str, variant: str) -> CachedPage | None:
        """Another process holds the lock: its page, once stored; None to load it ourselves."""
        deadline = time.monotonic() + self._settings.lock_wait_seconds
        pause = 0.005
        while time.monotonic() < deadline:
            await asyncio.sleep(pause)
            pause = min(pause * 2, 0.05)
            try:
                now_token, page, locked = await self._read(owner, variant)
            except RedisUnavailable:
                return None
            if now_token != token:
                return None  # invalidated meanwhile: load the current state ourselves
            if page is not None:
                return page
            if not locked:
                return None  # the holder gave up or died
        return None

    async def _read(self, owner: str, variant: str) -> tuple[str, CachedPage | None, bool]:
        token, value, locked = await self._call(
            self._link.run(
                _READ_SCRIPT,
                [self._version_key(owner)],
                [
                    self._fresh_token(),
                    int(self._settings.version_ttl_seconds * 1000),
                    self._key("p", owner, ""),
                    variant,
                    self._key("l", owner, ""),
                ],
            )
        )
        token = token.decode() if isinstance(token, bytes) else str(token)
        return token, CachedPage.decode(value) if value else None, bool(locked)

    async def _load(self, load: Callable[[], Awaitable[bytes]]) -> CachedPage:
        self.metrics.loads.inc()
        return CachedPage.of(await load())

    async def _bypass(self, load: Callable[[], Awaitable[bytes]], reason: str) -> CachedPage:
        if self._redis is not None:
            self.metrics.bypasses.labels(reason).inc()
        return await self._load(load)

    # Writes --------------------------------------------------------------------------------------

    async def invalidate(self, owner: str) -> None:
        """``owner``'s data changed (call after the commit, before answering): no instance serves
        an earlier page again."""
        self.metrics.invalidations.inc()
        await self._set_version(owner, self._fresh_token())

    async def forget(self, owner: str) -> None:
        """``owner``'s account is gone: drop their pages and cache nothing for them again."""
        self.metrics.invalidations.inc()
        await self._set_version(owner, GONE)

    async def _set_version(self, owner: str, token: str) -> None:
        if self._redis is None:
            return
        if time.monotonic() >= self._open_until:
            try:
                await self._send_version(owner, token)
                return
            except RedisUnavailable:
                pass
        self._keep_pending(owner, token)

    async def _send_version(self, owner: str, token: str) -> None:
        await self._call(
            self._link.run(
                _INVALIDATE_SCRIPT,
                [self._version_key(owner), self._index_key(owner)],
                [token, int(self._settings.version_ttl_seconds * 1000)],
            )
        )

    def _keep_pending(self, owner: str, token: str) -> None:
        if self._pending.get(owner) == GONE:
            return
        if owner in self._pending or len(self._pending) < MAX_PENDING:
            self._pending[owner] = token
        else:
            # Lost: until every page stored before now has expired, this process skips the cache.
            self._distrust_until = time.monotonic() + self._stale_horizon
            log.warning("page cache invalidation lost; cache skipped here for a while", seconds=self._stale_horizon)

    # The breaker ---------------------------------------------------------------------------------

    async def _usable(self) -> bool:
        if self._redis is None or time.monotonic() < self._open_until:
            return False
        if self._pending and not await self._flush_pending():
            return False
        return time.monotonic() >= self._distrust_until

    async def flush_forever(self) -> None:
        """Send kept invalidations as soon as Redis answers again, requests or not (a background task)."""
        while True:
            await asyncio.sleep(self._settings.retry_after_seconds / 2)
            if self._pending and time.monotonic() >= self._open_until:
                await self._flush_pending()

    async def _flush_pending(self) -> bool:
        async with self._flushing:
            while self._pending:
                owner, token = next(iter(self._pending.items()))
                try:
                    await self._send_version(owner, token)
                except RedisUnavailable:
                    return False
                if self._pending.get(owner) == token:
                    del self._pending[owner]
            return True

    def _fresh_token(self) -> str:
        return f"{self._seed}{next(self._counter):x}"

    async def _call(self, awaitable: Awaitable[Any]) -> Any:
        try:
            # The link bounds each call: a connect within the timeout, then the answer within it.
            result = await awaitable
        except (ReplyError, OSError, TimeoutError) as error:
            if time.monotonic() >= self._open_until:
                log.warning("redis unavailable; page cache bypassed", error=repr(error), kind=type(error).__name__)
            self._open_until = time.monotonic() + self._settings.retry_after_seconds
            self._tripped = True
            self.metrics.breaker_open.set(1)
            raise RedisUnavailable(str(error)) from error
        if self._tripped:
            # Back after an outage: other instances may still hold invalidations they could not
            # send (they flush every retry_after / 2); give them that long before trusting pages.
            self._tripped = False
            self._distrust_until = max(self._distrust_until, time.monotonic() + self._settings.retry_after_seconds)
            self.metrics.breaker_open.set(0)
            log.info("redis answers again; page cache in use after a settling delay")
        return result

    # Keys ----------------------------------------------------------------------------------------

    def _key(self, kind: str, owner: str, *parts: str) -> str:
        return ":".join([f"{self._settings.prefix}{kind}", owner, *parts])

    def _version_key(self, owner: str) -> str:
        return self._key("v", owner)

    def _index_key(self, owner: str) -> str:
        return self._key("i", owner)
