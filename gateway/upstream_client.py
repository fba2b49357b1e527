"""The proxy's HTTP/1.1 client: one exchange with an upstream instance over a pooled keep-alive connection.

Proxied requests are the gateway's hot path, and aiohttp's general client (its request
and response objects, header preparation, client middlewares, a timer context per
request) cost as much as the rest of the gateway together. This client does only what
the proxy needs, on an ``asyncio.Protocol`` with MagicStack's ``httptools`` (llhttp, the
parser uvicorn uses) reading the answers. It is over 300 lines because the protocol, the
connection's exchange and the pool share one connection's state and invariants (reuse only
after a clean end); split apart, each would reach into the others' internals:

1. **Pools.** :class:`InstancePool` keeps the idle keep-alive connections of one
   instance (last used first). A connection idle for ``UPSTREAM_KEEPALIVE_SECONDS`` or
   longer is closed instead of reused: that is below the services' own keep-alive, so
   the gateway never sends into a socket the server is closing. Nothing waits for a
   connection: the upstream's bulkhead (:mod:`gateway.bulkheads`) bounds how many are
   open at once.
2. **Connect.** Within the route's connect timeout (:class:`ConnectTimedOut`); refused
   or unreachable is :class:`ConnectFailed`. Either way nothing was sent.
3. **Send.** The request head and the buffered body go out in one write.
4. **Deadline.** One timer per exchange (``loop.call_at``) at the route's deadline,
   counted from the exchange's start: when it fires the connection is aborted and the
   exchange fails with :class:`TimedOut`, wherever it is (connecting excepted, which has
   its own timeout; the deadline still ends it).
5. **Answer.** :meth:`Connection.answer` gives the status and headers; the body is read
   whole (:meth:`Connection.read`) or streamed (:meth:`Connection.chunks`), chunked or
   of known length. Past ``_PAUSE_BYTES`` unread bytes the socket stops reading until
   the client side catches up. The connection goes back to the pool only when the
   answer was read to its end and both sides keep the connection alive.
6. **Failures** tell :mod:`gateway.retry` what may be tried again: the connection
   dropped before the head of the answer (:class:`Disconnected`), during its body
   (:class:`BodyCut`), or the answer is not HTTP or breaks the limits
   (:class:`BadAnswer`: at most ``_MAX_HEADERS`` header lines and ``_MAX_HEAD_BYTES``
   of head).

A connection whose exchange ended any other way (the client went away, a timeout, a
failure) is closed, never reused.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import AsyncIterator, Callable
from typing import cast

import httptools

# An answer's head may be at most this large and have at most this many header lines
# (aiohttp's client allowed 8190 bytes a line and had no count).
_MAX_HEAD_BYTES = 64 * 1024
_MAX_HEADERS = 128
# Unread body bytes above which the socket stops reading (back-pressure from a slow client).
_PAUSE_BYTES = 256 * 1024


class UpstreamError(Exception):
    """An exchange with an upstream instance failed; the subclass says how."""


class ConnectFailed(UpstreamError):
    """The connection was refused or the instance is unreachable: nothing was sent."""


class ConnectTimedOut(UpstreamError, TimeoutError):
    """The connection did not open within the connect timeout: nothing was sent."""


class Disconnected(UpstreamError):
    """The instance closed or reset the connection before the head of its answer arrived.

    The request may or may not have reached a handler: an idle-closed kept-alive
    connection and an instance that died mid-request look alike from here.
    """


class BodyCut(UpstreamError):
    """The connection dropped (or the framing broke) in the middle of the answer's body."""


class BadAnswer(UpstreamError):
    """The instance's answer is not well-formed HTTP/1.1, or its head is over the limits."""


class TimedOut(UpstreamError, TimeoutError):
    """The exchange did not end within the route's deadline."""


class Connection(asyncio.Protocol):
    """One keep-alive connection to an instance, carrying one exchange at a time."""

    def __init__(self, pool: InstancePool) -> None:
        self._pool = pool
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        # Called too when the deadline passes (the proxy cuts a client that stopped reading).
        self.on_expire: Callable[[], None] | None = None
        self._reset(head_only=False)

    def _reset(self, *, head_only: bool) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length: int | None = None
        self._head_bytes = 0
        self._head_only = head_only
        self._has_head = False
        self._complete = False
        self._reuse = True
        self._until_close = False
        self._error: UpstreamError | None = None
        self._chunks: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._paused = False
        self._waiter: asyncio.Future[None] | None = None

    # -- asyncio.Protocol -------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._pool.forget(self)
        if self._until_close and exc is None and not self._complete and self._error is None:
            self._complete = True  # an answer without length or chunks ends where the connection does
            self._reuse = False
            self._wake()
        if not self._complete and self._error is None:
            self._fail(BodyCut("the connection closed mid-answer") if self._has_head else Disconnected("closed"))

    def data_received(self, data: bytes) -> None:
        if self._complete or self._error is not None:
            # Bytes after a complete answer (or after a failure): the connection cannot be trusted.
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(BadAnswer("the instance upgraded the connection"))
        except httptools.HttpParserError as exc:
            self._fail(BodyCut(str(exc)) if self._has_head else BadAnswer(str(exc)))
        except UpstreamError as exc:  # raised by a callback below: over the limits
            self._fail(exc)

    def eof_received(self) -> bool | None:
        return None  # close the transport: connection_lost tells a waiting exchange

    def pause_writing(self) -> None:  # the request is written whole; nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    # -- httptools callbacks ----------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if len(self.headers) >= _MAX_HEADERS or self._head_bytes > _MAX_HEAD_BYTES:
            raise BadAnswer("the answer's head is over the limits")
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:
            self.headers = []  # an interim answer (100 Continue, 103 Early Hints): the real one follows
            self._head_bytes = 0
            return
        self.status = status
        self._has_head = True
        self._reuse = self._parser.should_keep_alive()  # asked here: llhttp forgets it at the message's end
        chunked = False
        for name, value in self.headers:
            if len(name) == 14 and name.lower() == b"content-length" and value.isdigit():
                self.content_length = int(value)  # llhttp has checked it (one value, digits)
            elif len(name) == 17 and name.lower() == b"transfer-encoding":
                chunked = True
        self._until_close = self.content_length is None and not chunked and status not in (204, 304)
        self._wake()
        if self._head_only:
            # A HEAD answer has no body whatever its Content-Length says; llhttp cannot be
            # told so, so this connection ends with the answer instead of being reused.
            self._complete = True
            self._reuse = False

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > _PAUSE_BYTES and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._has_head:
            self._complete = True
            self._wake()

    # -- the exchange -----------------------------------------------------------------

    def send(self, head: bytes, body: bytes | None, *, head_only: bool) -> None:
        """Start an exchange: the request head and body go out in one write."""
        self._reset(head_only=head_only)
        self.on_expire = None
        assert self._transport is not None
        self._transport.write(head + body if body else head)

    async def answer(self) -> None:
        """Wait for the answer's head (``status``, ``headers``, ``content_length``)."""
        while not self._has_head:
            await self._wait()

    async def read(self) -> bytes:
        """The rest of the answer's body, whole."""
        while not self._complete:
            await self._wait()
        body = b"".join(self._chunks)
        self._chunks.clear()
        return body

    async def chunks(self) -> AsyncIterator[bytes]:
        """The answer's body as it arrives."""
        while True:
            while self._chunks:
                if self._error is not None:
                    raise self._error
                chunk = self._chunks.popleft()
                self._buffered -= len(chunk)
                if self._paused and self._buffered <= _PAUSE_BYTES // 2 and self._transport is not None:
                    self._paused = False
                    self._transport.resume_reading()
                yield chunk
            if self._complete:
                return
            await self._wait()

    def expire(self) -> None:
        """The exchange's deadline passed: it fails (now, or at its next wait), and the connection is closed."""
        self._fail(TimedOut("the exchange took longer than its deadline"))
        if self.on_expire is not None:
            self.on_expire()

    @property
    def reusable(self) -> bool:
        return self._complete and self._reuse and self._error is None and not self.closed

    def close(self) -> None:
        self.closed = True
        if self._transport is not None:
            self._transport.abort()

    def _fail(self, error: UpstreamError) -> None:
        if self._error is None:
            self._error = error
        self.close()
        self._wake()

    async def _wait(self) -> None:
        if self._error is not None:
            raise self._error
        waiter = self._waiter = asyncio.get_running_loop().create_future()
        try:
            await waiter
        finally:
            self._waiter = None
        if self._error is not None:
            raise self._error

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


class InstancePool:
    """The keep-alive connections to one instance (``host``:``port``)."""

    def __init__(self, host: str, port: int, keepalive_seconds: float) -> None:
        self.host = host
        self.port = port
        self.authority = f"{host}:{port}"  # the Host header of requests to it
        self.keepalive_seconds = keepalive_seconds
        self._idle: list[Connection] = []
        self._open: set[Connection] = set()
        self.closing = False

    async def connection(self, connect_timeout: float) -> Connection:
        """An idle connection young enough to reuse, or a new one within ``connect_timeout``."""
        loop = asyncio.get_running_loop()
        if self._idle:
            now = loop.time()
            while self._idle:
                conn = self._idle.pop()
                if not conn.closed and now - conn.idle_since < self.keepalive_seconds:
                    return conn
                conn.close()
        if self.closing:
            raise ConnectFailed("the gateway is shutting down")
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(lambda: Connection(self), self.host, self.port)
        except TimeoutError:
            raise ConnectTimedOut(f"no connection within {connect_timeout:g} s") from None
        except OSError as exc:
            raise ConnectFailed(exc.strerror or type(exc).__name__) from None
        self._open.add(conn)
        return conn

    def release(self, conn: Connection) -> None:
        """Back to the idle list when the exchange ended cleanly and both sides keep it alive; else closed."""
        if conn.reusable and not self.closing:
            conn.idle_since = asyncio.get_running_loop().time()
            self._idle.append(conn)
        else:
            conn.close()

    def forget(self, conn: Connection) -> None:
        self._open.discard(conn)

    def close_idle(self, older_than: float = 0.0) -> None:
        """Close idle connections idle for at least ``older_than`` seconds (all with 0)."""
        now = asyncio.get_running_loop().time()
        kept = [conn for conn in self._idle if not conn.closed and now - conn.idle_since < older_than]
        for conn in self._idle:
            if conn not in kept:
                conn.close()
        self._idle = kept

    def close(self) -> None:
        """Close every connection, idle or busy (at shutdown, after requests in flight had their grace)."""
        self.closing = True
        for conn in (*self._idle, *self._open):
            conn.close()
        self._idle.clear()
        self._open.clear()
