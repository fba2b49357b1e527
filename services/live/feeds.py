"""The per-user feeds in Redis: what every live instance shares.

Keys (``P`` is ``LIVE_KEY_PREFIX``; ``{sub}`` is a Redis Cluster hash tag, so a user's keys
share a slot and each script touches one slot):

- ``P live:u:{sub}``: the user's stream. One entry per event: ``t`` its type, ``o`` when
  it occurred (epoch seconds), ``e`` the frame's one-line JSON. Trimmed to the window on
  every add (``MAXLEN`` = ``LIVE_WINDOW_EVENTS`` exactly, then ``MINID`` = now - window) and
  expiring a window after its newest event. The entry id is the SSE ``id``.
- ``P live:seen:{sub}:<event id>``: de-duplication (the broker delivers at least once):
  the add is skipped when it exists; it lives as long as the window.
- ``P live:cut:{sub}``: the newest id that ``MAXLEN`` trimmed. A ``Last-Event-ID`` below it
  may have missed events, so that client is told to reset.
- ``P live:gone:{sub}``: set by ``user.deleted`` (as long as a token may live): nothing is
  added for that user any more and their streams are refused.
- ``P live:c:{sub}``: the user's open streams across instances, a sorted set of stream
  ids scored by lease expiry (ms), renewed by the instance holding them.
- ``P live:wake:<instance>``: written to wake this instance's blocking read when a user is
  added to it.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from services.kit.events import Event
from services.live.config import LiveSettings

# KEYS: stream, seen, cut, gone. ARGV: window (ms), max entries, type, occurred (s), frame JSON.
# Returns 1 added, 0 the user is gone, -1 a duplicate.
_ADD = """
if redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return -1 end
local maxlen = tonumber(ARGV[2])
local len = redis.call('XLEN', KEYS[1])
if len >= maxlen then
  local over = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', len - maxlen + 1)
  redis.call('SET', KEYS[3], over[#over][1], 'PX', ARGV[1])
end
redis.call('XADD', KEYS[1], 'MAXLEN', maxlen, '*', 't', ARGV[3], 'o', ARGV[4], 'e', ARGV[5])
local now = redis.call('TIME')
local oldest = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) - tonumber(ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', oldest)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: stream, cut, gone. ARGV: gone TTL (ms), window (ms). The stream is replaced by one
# marker entry, which every instance reading it sees and ends that user's streams.
_DELETE_USER = """
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
redis.call('XADD', KEYS[1], '*', 't', 'user.deleted', 'o', '0', 'e', '{}')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: leases. ARGV: stream id, lease (ms), cap. Returns 1 granted, 0 at the cap.
_LEASE = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

# KEYS: leases of some users. ARGV: lease (ms), then per key its stream ids joined by ",".
# Pushes each lease's expiry forward (a lease that ran out stays out: ZADD XX).
_RENEW = """
local now = redis.call('TIME')
local until_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + tonumber(ARGV[1])
for i = 1, #KEYS do
  for stream in string.gmatch(ARGV[i + 1], '[^,]+') do redis.call('ZADD', KEYS[i], 'XX', until_ms, stream) end
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
return 1
"""

StreamId = tuple[int, int]
ZERO: StreamId = (0, 0)


def parse_id(value: str) -> StreamId:
    ms, _, seq = value.partition("-")
    return int(ms), int(seq or 0)


def format_id(value: StreamId) -> str:
    return f"{value[0]}-{value[1]}"


class FeedsUnavailable(ConnectionError):
    """Redis did not answer (an OSError, so the event consumer requeues instead of counting a failure)."""


@dataclass(frozen=True)
class Start:
    """Where a new stream starts: after ``cursor``; ``resumed`` when that is the client's Last-Event-ID."""

    cursor: StreamId
    resumed: bool
    gone: bool


class Feeds:
    """The Redis side of live: adds (from the consumer), starts, leases and the blocking read."""

    def __init__(self, settings: LiveSettings) -> None:
        self.settings = settings
        self._prefix = settings.live_key_prefix + "live:"
        self.window_ms = settings.live_window_seconds * 1000
        self.lease_ms = round(settings.live_lease_seconds * 1000)
        self.gone_ms = max(settings.token_max_lifetime_seconds, settings.live_window_seconds) * 1000
        self.wake_key = f"{self._prefix}wake:{uuid.uuid4().hex}"
        timeout = settings.live_redis_timeout_seconds
        common: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        self.redis = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                settings.live_redis_url,
                max_connections=settings.live_redis_max_connections,
                timeout=timeout,
                socket_timeout=timeout,
                **common,
            )
        )
        # The blocking read has a connection of its own, its timeout above the block time.
        self.reader = redis.Redis(
            connection_pool=redis.BlockingConnectionPool.from_url(
                settings.live_redis_url,
                max_connections=2,
                timeout=timeout,
                socket_timeout=settings.live_block_seconds + timeout,
                **common,
            )
        )
        self._add = self.redis.register_script(_ADD)
        self._delete_user = self.redis.register_script(_DELETE_USER)
        self._lease = self.redis.register_script(_LEASE)
        self._renew = self.redis.register_script(_RENEW)

    # keys ---------------------------------------------------------------------------------

    def stream_key(self, user: str) -> str:
        return f"{self._prefix}u:{{{user}}}"

    def _lease_key(self, user: str) -> str:
        return f"{self._prefix}c:{{{user}}}"

    # the consumer's side ------------------------------------------------------------------

    async def add(self, user: str, event: Event) -> bool:
        """Append ``event`` to ``user``'s stream; False when it was there already (a redelivery)."""
        frame = json.dumps(
            {"type": event.type, "id": str(event.id), "occurred_at": event.occurred_at.isoformat(), "data": event.data},
            separators=(",", ":"),
            ensure_ascii=False,
        )
        keys = [
            self.stream_key(user),
            f"{self._prefix}seen:{{{user}}}:{event.id}",
            f"{self._prefix}cut:{{{user}}}",
            f"{self._prefix}gone:{{{user}}}",
        ]
        args: list[str | int | float] = [
            self.window_ms,
            self.settings.live_window_events,
            event.type,
            event.occurred_at.timestamp(),
            frame,
        ]
        try:
            added = await self._add(keys=keys, args=args)
        except RedisError as error:
            raise FeedsUnavailable(f"redis: {type(error).__name__}") from error
        return int(added) != -1

    async def delete_user(self, user: str) -> None:
        keys = [self.stream_key(user), f"{self._prefix}cut:{{{user}}}", f"{self._prefix}gone:{{{user}}}"]
        try:
            await self._delete_user(keys=keys, args=[self.gone_ms, self.window_ms])
        except RedisError as error:
            raise FeedsUnavailable(f"redis: {type(error).__name__}") from error

    # a stream's side ----------------------------------------------------------------------

    async def start(self, user: str, last_event_id: StreamId | None) -> Start:
        """Where a stream of ``user`` starts: after its Last-Event-ID when nothing since is lost, else now."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.time()
            pipe.xrevrange(self.stream_key(user), "+", "-", count=1)
            pipe.get(f"{self._prefix}cut:{{{user}}}")
            pipe.exists(f"{self._prefix}gone:{{{user}}}")
            (seconds, micros), newest, cut, gone = await pipe.execute()
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        latest = parse_id(newest[0][0]) if newest else ZERO
        if last_event_id is None:
            return Start(latest, resumed=False, gone=bool(gone))
        within = now_ms - self.window_ms <= last_event_id[0] <= now_ms + 1000
        trimmed_past_it = cut is not None and parse_id(cut) > last_event_id
        if within and not trimmed_past_it:
            return Start(last_event_id, resumed=True, gone=bool(gone))
        return Start(latest, resumed=False, gone=bool(gone))

    async def since(self, user: str, cursor: StreamId) -> list[tuple[str, dict[str, str]]]:
        """The entries of ``user``'s stream after ``cursor`` (at most the window's count)."""
        entries: Any = await self.redis.xrange(
            self.stream_key(user), f"({format_id(cursor)}", "+", count=self.settings.live_window_events
        )
        return list(entries)

    async def lease(self, user: str, stream: str) -> bool:
        """Count a new stream of ``user``; False when they have ``LIVE_MAX_STREAMS_PER_USER`` already."""
        granted = await self._lease(
            keys=[self._lease_key(user)], args=[stream, self.lease_ms, self.settings.live_max_streams_per_user]
        )
        return int(granted) == 1

    async def renew(self, leases: dict[str, list[str]]) -> None:
        """Renew the leases of this instance's streams (user → stream ids)."""
        users = list(leases)
        await self._renew(
            keys=[self._lease_key(user) for user in users], args=[self.lease_ms, *(",".join(leases[u]) for u in users)]
        )

    async def release(self, leases: dict[str, list[str]]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for user, streams in leases.items():
                pipe.zrem(self._lease_key(user), *streams)
            await pipe.execute()

    async def wake(self) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xadd(self.wake_key, {"w": "1"}, maxlen=1)
            pipe.pexpire(self.wake_key, 60_000)
            await pipe.execute()

    async def read(self, cursors: dict[str, str]) -> list[Any]:
        """Block until one of ``cursors``' streams (key → id) has entries after its id, or the block time."""
        streams: dict[Any, Any] = {**cursors, self.wake_key: "$"}
        result: Any = await self.reader.xread(streams, count=100, block=round(self.settings.live_block_seconds * 1000))
        return list(result or ())

    async def ping(self) -> None:
        try:
            await self.redis.ping()
        except RedisError as error:
            raise FeedsUnavailable(f"redis: {type(error).__name__}") from error

    async def close(self) -> None:
        await self.redis.aclose()
        await self.reader.aclose()
