"""Streaming routes (Server-Sent Events from the live service): relayed chunk by chunk, for as long as they last.

The regular proxy (:mod:`gateway.proxy`) gives an exchange a deadline; a stream has none.
Instead, per stream:

1. **Caps** before anything is sent upstream: at most ``GATEWAY_MAX_STREAMS_PER_CLIENT``
   open per client address (429 problem, ``Retry-After``) and ``GATEWAY_MAX_STREAMS`` in
   all (503). The stream also holds the in-flight slot of its address and subject like
   any request (gateway.ratelimit).
2. **An instance** is picked by the balancer (fewest streams open, healthy, breaker
   closed). A connect failure or a 503 (an instance draining) before any byte went to
   the client is tried once on another instance; once bytes went out, never.
3. **No buffering**: each chunk the upstream sends is written to the client at once
   (no compression, no read-ahead); the upstream's own answers other than 200 (401,
   429, 400 problems) pass through whole.
4. **Idle timeout** ``GATEWAY_STREAM_IDLE_SECONDS`` (45 s, three of live's heartbeats):
   an upstream silent that long, or a client that reads nothing that long, ends the stream.
5. **Drain**: on shutdown every stream is ended cleanly (an ``event: closing`` frame when
   the last relayed bytes ended a frame, then the final chunk), so clients reconnect at
   once to a gateway that is up, before aiohttp's shutdown grace runs out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import Gauge
from yarl import URL

from gateway.balancer import Instance
from gateway.config import GatewaySettings
from gateway.headers import copy_answer_headers, forwarded_headers, has_dot_segments
from gateway.metrics import GatewayMetrics
from gateway.middleware import EXCHANGE
from gateway.routes import Route
from services.kit.logging import get_logger
from services.kit.problem import Problem

log = get_logger("gateway.streams")

CLOSING_FRAME = b"event: closing\ndata: {}\n\n"
_RETRY_AFTER = "1"
# Upstream answers other than a stream are small problems: read whole, at most this much.
_MAX_ANSWER_BYTES = 64 * 1024


class _Open:
    """One stream being relayed: its upstream answer, and whether a drain ended it."""

    __slots__ = ("draining", "upstream")

    def __init__(self, upstream: aiohttp.ClientResponse) -> None:
        self.upstream = upstream
        self.draining = False


class Streams:
    """The handler of streaming routes, its own connection pool, caps and the drain."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._per_client: dict[str, int] = {}
        self._open: set[_Open] = set()
        self._count = 0
        self._session: aiohttp.ClientSession | None = None
        self._closing = False
        Gauge("gateway_streams_open", "Streams open through the gateway.", registry=metrics.registry).set_function(
            lambda: self._count
        )

    async def open(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: the streams' own session (a stream holds its connection for its whole life)."""
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=self._settings.gateway_max_streams, keepalive_timeout=self._settings.upstream_keepalive_seconds
            ),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
        )
        try:
            yield
        finally:
            await self._session.close()
            self._session = None

    async def drain(self, app: web.Application) -> None:
        """``on_shutdown``: end every open stream now (its handler writes the end and returns)."""
        self._closing = True
        for stream in list(self._open):
            stream.draining = True
            stream.upstream.close()
        if self._open:
            log.info("streams ended for shutdown", streams=len(self._open))

    def handler_for(self, route: Route) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.relay(request, route)

        return handle

    async def relay(self, request: web.Request, route: Route) -> web.StreamResponse:
        exchange = request[EXCHANGE]
        exchange.route = route.name
        if has_dot_segments(request.rel_url.raw_path):
            raise Problem(400, "the path must not contain '.' or '..' segments")
        if self._closing:
            raise Problem(503, "the gateway is shutting down; reconnect", headers={"Retry-After": _RETRY_AFTER})
        client = exchange.client or request.remote or "unknown"
        held = self._per_client.get(client, 0)
        if held >= self._settings.gateway_max_streams_per_client:
            exchange.limited = "streams_per_client"
            self._metrics.rejected.labels(reason="streams_per_client").inc()
            raise Problem(
                429,
                f"too many open streams from this address ({self._settings.gateway_max_streams_per_client})",
                headers={"Retry-After": _RETRY_AFTER},
            )
        if self._count >= self._settings.gateway_max_streams:
            self._metrics.rejected.labels(reason="shed_streams").inc()
            raise Problem(503, "the gateway holds as many streams as it may", headers={"Retry-After": _RETRY_AFTER})
        self._per_client[client] = held + 1
        self._count += 1
        try:
            return await self._attempts(request, route)
        finally:
            self._count -= 1
            left = self._per_client[client] - 1
            if left:
                self._per_client[client] = left
            else:
                del self._per_client[client]

    async def _attempts(self, request: web.Request, route: Route) -> web.StreamResponse:
        instance = route.upstream.pick()
        try:
            return await self._exchange(request, route, instance, last_try=False)
        except _TryElsewhere:
            other = route.upstream.pick(exclude=instance)
            request[EXCHANGE].retried = True
            self._metrics.retries.labels(route=route.name).inc()
            return await self._exchange(request, route, other, last_try=True)

    async def _exchange(
        self, request: web.Request, route: Route, instance: Instance, *, last_try: bool
    ) -> web.StreamResponse:
        session = self._session
        if session is None:
            raise RuntimeError("the stream session is not open")
        exchange = request[EXCHANGE]
        exchange.upstream = instance.url
        idle = self._settings.gateway_stream_idle_seconds
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=route.connect_timeout_seconds,
            sock_connect=route.connect_timeout_seconds,
            sock_read=idle,
        )
        trial = instance.started()
        ok: bool | None = None
        connect_failed = False
        try:
            upstream = await session.get(
                URL(instance.url + request.rel_url.raw_path_qs, encoded=True),
                headers=forwarded_headers(request, exchange.request_id),
                timeout=timeout,
                allow_redirects=False,
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            connect_failed = isinstance(exc, aiohttp.ClientConnectorError)
            instance.finished(ok=False, connect_failed=connect_failed, trial=trial)
            self._metrics.upstream_failures.labels(
                route=route.name, upstream=instance.url, reason="connect" if connect_failed else "broken"
            ).inc()
            if not last_try and len(route.upstream.instances) > 1:
                raise _TryElsewhere from None
            log.warning("stream upstream unreachable", route=route.name, upstream=instance.url)
            raise Problem(502, f"the {route.upstream.name} service is unavailable") from None
        try:
            if upstream.status != 200:
                ok = upstream.status < 500
                if upstream.status == 503 and not last_try and len(route.upstream.instances) > 1:
                    raise _TryElsewhere
                body = await upstream.content.read(_MAX_ANSWER_BYTES)
                answer = web.Response(status=upstream.status, body=body)
                copy_answer_headers(upstream.headers, answer.headers, whole_body=True)
                return answer
            ok = True
            return await self._stream(request, upstream)
        finally:
            upstream.release()
            instance.finished(ok=ok, trial=trial)

    async def _stream(self, request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        response = web.StreamResponse(status=200)
        copy_answer_headers(upstream.headers, response.headers, whole_body=False)
        await response.prepare(request)
        stream = _Open(upstream)
        self._open.add(stream)
        idle = self._settings.gateway_stream_idle_seconds
        at_frame_end = True
        try:
            try:
                async for chunk in upstream.content.iter_any():
                    async with asyncio.timeout(idle):  # a client that reads nothing holds no stream
                        await response.write(chunk)
                    at_frame_end = chunk.endswith(b"\n\n")
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                if not stream.draining:
                    log.info("stream ended", reason=type(exc).__name__)
            if stream.draining and at_frame_end:
                await response.write(CLOSING_FRAME)
            await response.write_eof()
        except (ConnectionError, TimeoutError, aiohttp.ClientError):
            request[EXCHANGE].aborted = True  # the client went away
        finally:
            self._open.discard(stream)
        return response


class _TryElsewhere(Exception):
    """Nothing went to the client yet and another instance may take the stream."""
