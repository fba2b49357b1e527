"""One instance's open streams and the one task that reads their users' feeds.

Each open stream is a :class:`Subscriber`. Subscribers of one user share a :class:`Feed`
(their stream key and the read cursor). The reader task XREAD-BLOCKs every feed's key
at once (plus this instance's wake key, written when a feed is added so the read starts
again with it) and hands each entry to the feed's subscribers; each subscriber keeps its
own cursor and takes an entry only past it, so a catch-up read and the reader may
overlap without a frame delivered twice or out of order. The clock task, once a second,
ends streams whose token expired, writes heartbeats, renews and releases the stream
leases, and on drain closes every stream with ``event: closing``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client import CollectorRegistry
from redis.exceptions import RedisError

from services.kit.logging import get_logger
from services.kit.problem import Problem
from services.kit.security.claims import Claims
from services.live import frames
from services.live.feeds import Feeds, FeedsUnavailable, StreamId, format_id, parse_id
from services.live.subscriber import LiveMetrics, Subscriber

log = get_logger("live.hub")

# Seconds a client refused for its user's cap is asked to wait (a lease frees within LIVE_LEASE_SECONDS).
CAP_RETRY_AFTER = 5
TICK_SECONDS = 1.0


class Feed:
    __slots__ = ("cursor", "key", "subscribers")

    def __init__(self, key: str, cursor: StreamId) -> None:
        self.key = key
        self.cursor = cursor
        self.subscribers: set[Subscriber] = set()


class Hub:
    """This instance's streams (:meth:`open`, :meth:`stream`) and its reader and clock tasks."""

    def __init__(self, feeds: Feeds, registry: CollectorRegistry, draining: Callable[[], bool]) -> None:
        self.feeds = feeds
        self.settings = feeds.settings
        self.metrics = LiveMetrics(registry, lambda: len(self.subscribers))
        self.subscribers: set[Subscriber] = set()
        self._feeds: dict[str, Feed] = {}  # by user
        self._by_key: dict[str, Feed] = {}
        self._draining = draining
        self._closing = False
        self._released: dict[str, list[str]] = {}
        self._blocking = False
        self._woken = False
        self._chores: set[asyncio.Task[Any]] = set()  # catch-up reads and wakes: held until done

    # opening a stream ---------------------------------------------------------------------

    async def open(self, user: str, claims: Claims, last_event_id: StreamId | None) -> tuple[Subscriber, bytes]:
        """A new subscriber of ``user`` and its first frames; a problem when it may not open."""
        if self._closing or self._draining():
            raise Problem(503, "this instance is shutting down; reconnect", headers={"Retry-After": "1"})
        if len(self.subscribers) >= self.settings.live_max_streams:
            raise Problem(503, "this instance has as many streams as it may hold", headers={"Retry-After": "1"})
        try:
            start = await self.feeds.start(user, last_event_id)
            if start.gone:
                raise Problem(403, "this account was deleted")
            subscriber = Subscriber(user, claims, start.cursor)
            if not await self.feeds.lease(user, subscriber.id):
                raise Problem(
                    429,
                    f"too many open streams for this user ({self.settings.live_max_streams_per_user})",
                    headers={"Retry-After": str(CAP_RETRY_AFTER)},
                )
        except RedisError as error:
            log.warning("redis unavailable for a new stream", error=type(error).__name__)
            raise Problem(503, "live updates are unavailable; retry later", headers={"Retry-After": "2"}) from None
        self._join(subscriber)
        first = frames.opening(resumed=start.resumed, window_seconds=self.settings.live_window_seconds)
        if last_event_id is not None and not start.resumed:
            first += frames.reset("window")
        self._chore(self._catch_up(subscriber))
        return subscriber, first

    def _join(self, subscriber: Subscriber) -> None:
        self.subscribers.add(subscriber)
        feed = self._feeds.get(subscriber.user)
        if feed is None:
            feed = Feed(self.feeds.stream_key(subscriber.user), subscriber.cursor)
            self._feeds[subscriber.user] = self._by_key[feed.key] = feed
            self._wake_reader()
        elif subscriber.cursor < feed.cursor:
            pass  # the catch-up read brings it to the feed's cursor
        feed.subscribers.add(subscriber)

    async def _catch_up(self, subscriber: Subscriber) -> None:
        """What the stream holds past the subscriber's cursor, then what the reader offered meanwhile."""
        limit = self.settings.live_max_queued_frames
        try:
            entries = await self.feeds.since(subscriber.user, subscriber.cursor)
        except RedisError as error:
            log.warning("catch-up read failed; the client reconnects", error=type(error).__name__)
            subscriber.close()
            return
        pending, subscriber.pending = subscriber.pending, []
        subscriber.ready = True
        for entry_id, fields in entries:
            self._offer(subscriber, entry_id, fields, limit)
        for entry_key, event_type, frame, occurred in pending:
            subscriber.offer(entry_key, event_type, frame, occurred, limit)

    def _offer(self, subscriber: Subscriber, entry_id: str, fields: dict[str, str], limit: int) -> None:
        event_type = fields.get("t", "")
        if event_type == "user.deleted":
            subscriber.close()
            return
        frame = frames.event(entry_id, event_type, fields.get("e", "{}"))
        subscriber.offer(parse_id(entry_id), event_type, frame, float(fields.get("o", 0) or 0), limit)

    def leave(self, subscriber: Subscriber) -> None:
        """The stream ended (its body finished or the client went away)."""
        subscriber.closed = True
        self.subscribers.discard(subscriber)
        feed = self._feeds.get(subscriber.user)
        if feed is not None:
            feed.subscribers.discard(subscriber)
            if not feed.subscribers:
                del self._feeds[subscriber.user]
                del self._by_key[feed.key]
        self._released.setdefault(subscriber.user, []).append(subscriber.id)

    # writing a stream ---------------------------------------------------------------------

    async def next_chunk(self, subscriber: Subscriber) -> bytes | None:
        """The frames to write next (None once the stream is over)."""
        while not subscriber.frames:
            if subscriber.closed:
                return None
            subscriber.wake.clear()
            await subscriber.wake.wait()
        now = time.time()
        parts = []
        while subscriber.frames:
            frame, event_type, occurred = subscriber.frames.popleft()
            parts.append(frame)
            if event_type:
                self.metrics.count(event_type)
                if occurred:
                    self.metrics.lag.observe(max(0.0, now - occurred))
        return b"".join(parts)

    def _chore(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self._chores.add(task)
        task.add_done_callback(self._chores.discard)
        return task

    # the reader ---------------------------------------------------------------------------

    def _wake_reader(self) -> None:
        if self._blocking and not self._woken:
            self._woken = True
            self._chore(self.feeds.wake()).add_done_callback(_ignore_failure)

    async def read_forever(self) -> None:
        limit = self.settings.live_max_queued_frames
        pause = 0.5
        while True:
            if not self._by_key:
                self._blocking = False
                await asyncio.sleep(0.05)
                continue
            cursors = {key: format_id(feed.cursor) for key, feed in self._by_key.items()}
            self._blocking, self._woken = True, False
            try:
                result = await self.feeds.read(cursors)
            except (RedisError, FeedsUnavailable, OSError) as error:
                self._blocking = False
                log.warning("feed read failed; retrying", error=type(error).__name__, pause=pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            self._blocking = False
            pause = 0.5
            for key, entries in result or ():
                feed = self._by_key.get(key)
                if feed is None:
                    continue
                for entry_id, fields in entries:
                    feed.cursor = max(feed.cursor, parse_id(entry_id))
                    for subscriber in list(feed.subscribers):
                        self._offer(subscriber, entry_id, fields, limit)

    # the clock ----------------------------------------------------------------------------

    async def tick_forever(self) -> None:
        heartbeat_every = self.settings.live_heartbeat_seconds
        renew_every = self.settings.live_lease_seconds / 3
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + heartbeat_every
        next_renew = loop.time() + renew_every
        while True:
            await asyncio.sleep(TICK_SECONDS)
            now = time.time()
            if self._draining() and not self._closing:
                self.close_all()
            for subscriber in list(self.subscribers):
                if subscriber.expires_at <= now:
                    subscriber.close(frames.EXPIRED)
            if loop.time() >= next_heartbeat:
                next_heartbeat = loop.time() + heartbeat_every
                for subscriber in self.subscribers:
                    subscriber.push(frames.HEARTBEAT)
            try:
                if self._released:
                    released, self._released = self._released, {}
                    await self.feeds.release(released)
                if loop.time() >= next_renew:
                    next_renew = loop.time() + renew_every
                    leases: dict[str, list[str]] = {}
                    for subscriber in self.subscribers:
                        leases.setdefault(subscriber.user, []).append(subscriber.id)
                    if leases:
                        await self.feeds.renew(leases)
            except RedisError as error:
                log.warning("lease upkeep failed", error=type(error).__name__)

    def close_all(self) -> None:
        """Drain: every stream ends with ``event: closing`` (clients reconnect at once, elsewhere)."""
        self._closing = True
        count = len(self.subscribers)
        for subscriber in list(self.subscribers):
            subscriber.close(frames.CLOSING)
        log.info("streams closed for drain", streams=count)

    async def release_all(self) -> None:
        """At stop: give back the leases still held."""
        for subscriber in list(self.subscribers):
            self.leave(subscriber)
        if self._released:
            released, self._released = self._released, {}
            with contextlib.suppress(RedisError):  # else they run out by themselves
                await self.feeds.release(released)


def _ignore_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.debug("wake failed", error=type(task.exception()).__name__)
