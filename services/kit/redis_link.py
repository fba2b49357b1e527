"""One pipelined connection to Redis per process, for calls on a request's hot path (the page cache).

redis-py's asyncio client takes a connection from a pool for every command (a condition
variable and a timeout under a ``BlockingConnectionPool``), wraps it in a retry object and a
deprecation shim, arms a timer for each read and parses in Python: about a quarter of a
``GET /todos`` served from the cache (docs/performance.md). Redis answers the commands of one
connection in the order they were sent, so one connection carries every concurrent call of
the process: a command is packed by hiredis, written at once, and its future waits in a
queue; the replies, parsed by hiredis's C reader, resolve the queue from its head. There
is no pool, and no timer per call.

Deadlines: each call must be answered within ``timeout`` seconds of being sent. Replies
come in order, so only the oldest call's deadline needs a timer; when it passes, the
connection is stalled (or Redis is): it is dropped and every waiting call fails with
``TimeoutError``. The next call connects again (within ``timeout`` as well). A dropped
connection fails its waiting calls with ``ConnectionError``; a command Redis refused raises
:class:`ReplyError`. Whether a failed call's command ran is unknown, as with any client.

Traces: with tracing on, each call is a CLIENT span named after the command
(``db.system.name=redis``), as the redis instrumentation gives redis-py's calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import deque
from typing import Any, cast
from urllib.parse import unquote, urlsplit

import hiredis

from services.kit import tracing

Arg = str | bytes | int | float

_MAX_WAITING = 10_000  # calls in flight on the connection before new ones fail at once


class ReplyError(Exception):
    """Redis answered the command with an error (``-ERR ...``, ``-NOSCRIPT ...``)."""


class _Wire(asyncio.Protocol):
    """The connection: replies resolve the waiting futures in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        reader, waiting = self.reader, self.waiting
        reader.feed(data)
        while (reply := reader.gets()) is not False:
            if not waiting:  # a reply nobody asked for: the stream is out of step
                self.drop(ConnectionError("redis sent a reply nobody waited for"))
                return
            future, _ = waiting.popleft()
            if future.done():  # its caller gave up (cancelled)
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(ReplyError(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(exc or ConnectionError("redis closed the connection"))

    def drop(self, error: BaseException) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.fail(error)

    def fail(self, error: BaseException) -> None:
        if self.lost is None:
            self.lost = error
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(type(error)(*error.args))


class Script:
    """A Lua script run by its SHA1 (``EVALSHA``), sent whole once when Redis does not know it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()  # Redis names scripts so


class RedisLink:
    """Calls to one Redis over one pipelined connection, each answered within ``timeout``."""

    def __init__(self, url: str, *, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme != "redis":
            raise ValueError(f"only redis:// URLs are supported here, not {parts.scheme}://")
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._db = int(parts.path.strip("/") or 0)
        self._auth: tuple[str, ...] = ()
        if parts.password is not None:
            user = unquote(parts.username) if parts.username else "default"
            self._auth = (user, unquote(parts.password))
        self._timeout = timeout
        self._wire: _Wire | None = None
        self._connecting: asyncio.Future[_Wire] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False

    async def call(self, *args: Arg) -> Any:
        """The reply to one command (bytes, int, None or a list of them)."""
        wire = self._wire
        if wire is None or wire.lost is not None:
            wire = await self._connect()
        if not tracing.tracing_enabled():
            return await self._send(wire, args)
        span = tracing.client_span(str(args[0]), f"{self._host}:{self._port}", system="redis")
        try:
            reply = await self._send(wire, args)
        except BaseException as error:
            span.end(status=0, failure=type(error).__name__)
            raise
        span.end(status=0)
        return reply

    async def run(self, script: Script, keys: list[str], args: list[Arg]) -> Any:
        """``script`` with ``keys`` and ``args``: by SHA1, or by its source if Redis lost it (a restart)."""
        try:
            return await self.call("EVALSHA", script.sha, len(keys), *keys, *args)
        except ReplyError as error:
            if not str(error).startswith("NOSCRIPT"):
                raise
        return await self.call("EVAL", script.source, len(keys), *keys, *args)

    async def aclose(self) -> None:
        self._closed = True
        if self._wire is not None:
            self._wire.drop(ConnectionError("closed"))
            self._wire = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _send(self, wire: _Wire, args: tuple[Arg, ...]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if len(wire.waiting) >= _MAX_WAITING:
            future.set_exception(TimeoutError("too many redis calls waiting"))
            return future
        assert wire.transport is not None
        wire.transport.write(hiredis.pack_command(cast(Any, args)))  # its stub wants a 1-tuple
        wire.waiting.append((future, time.monotonic() + self._timeout))
        if self._timer is None:
            self._timer = loop.call_at(loop.time() + self._timeout, self._check_deadline)
        return future

    def _check_deadline(self) -> None:
        """The oldest call's deadline: passed, the connection is dropped; else look again at it."""
        self._timer = None
        wire = self._wire
        if wire is None or not wire.waiting:
            return
        late = wire.waiting[0][1] - time.monotonic()
        if late <= 0:
            wire.drop(TimeoutError(f"redis did not answer within {self._timeout} s"))
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_at(loop.time() + late, self._check_deadline)

    async def _connect(self) -> _Wire:
        if self._closed:
            raise ConnectionError("closed")
        if self._connecting is None:  # concurrent callers share one attempt
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Future[_Wire]) -> None:
        self._connecting = None
        if not attempt.cancelled():
            attempt.exception()  # retrieved: its callers may all have given up

    async def _open(self) -> _Wire:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self._timeout):
            _, wire = await loop.create_connection(_Wire, self._host, self._port)
            try:
                hello = []
                if self._auth:
                    hello.append(self._send(wire, ("AUTH", *self._auth)))
                if self._db:
                    hello.append(self._send(wire, ("SELECT", self._db)))
                for reply in hello:
                    await reply
            except ReplyError as error:
                wire.drop(ConnectionError("closed"))
                raise ConnectionError(f"redis refused the connection's AUTH or SELECT: {error}") from None
            except BaseException:
                wire.drop(ConnectionError("closed"))
                raise
        self._wire = wire
        return wire
