"""The reverse proxy: one request in, the same request to an upstream instance, its answer back.

In order: the body is read whole, bounded in size and time (:mod:`gateway.bodies`);
then the route's and the upstream's bulkheads let the request in or shed it at once
(:mod:`gateway.bulkheads`); an instance is picked (:mod:`gateway.balancer`); the
exchange runs over the upstream's own connection pool (:mod:`gateway.pools`) within
the route's deadline (:mod:`gateway.routing`); a failed attempt is made once more
elsewhere when :mod:`gateway.retry` says that is harmless. Answers stream back
without being buffered, decompressed or re-encoded; headers follow
:mod:`gateway.headers`.

Failures the client can act on become problems: 408 or 413 for the body, 503 when a
bulkhead is full, 502 when the upstream cannot be reached or breaks the exchange, 504
when it takes longer than the route allows.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from gateway.balancer import Instance
from gateway.bodies import read_body
from gateway.bulkheads import Bulkhead
from gateway.config import GatewaySettings
from gateway.headers import copy_answer_pairs, has_dot_segments, request_head
from gateway.metrics import GatewayMetrics
from gateway.middleware import EXCHANGE
from gateway.pools import UpstreamPools
from gateway.retry import may_retry, not_sent
from gateway.routes import Route
from gateway.upstream_client import ConnectFailed, Connection, ConnectTimedOut, InstancePool, TimedOut, UpstreamError
from services.kit import tracing
from services.kit.logging import get_logger
from services.kit.problem import Problem

log = get_logger("gateway.proxy")

# Answers up to this size with a known length are relayed in one write (see Proxy._relay).
SMALL_BODY_BYTES = 64 * 1024


def _failure_reason(exc: BaseException) -> str:
    # Refused or unreachable: the instance is not there ("connect" ejects it at once).
    if isinstance(exc, ConnectFailed):
        return "connect"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "broken"


class Proxy:
    """Forwards requests over the upstreams' pools, within their bulkheads and deadlines."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics, pools: UpstreamPools) -> None:
        self._settings = settings
        self._metrics = metrics
        self._pools = pools

    def handler_for(self, route: Route) -> Handler:
        """The aiohttp handler of ``route``. What is fixed per route (its bulkheads, the shed
        reason) is looked up here, once, not per request."""
        upstream_bulkhead = self._pools.bulkheads[route.upstream.name]
        bulkheads = (upstream_bulkhead,) if route.bulkhead is None else (route.bulkhead, upstream_bulkhead)
        shed_reason = f"shed_{route.name}"

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.forward(request, route, bulkheads, shed_reason)

        return handle

    async def forward(
        self, request: web.Request, route: Route, bulkheads: tuple[Bulkhead, ...], shed_reason: str
    ) -> web.StreamResponse:
        exchange = request[EXCHANGE]
        exchange.route = route.name
        if has_dot_segments(request.rel_url.raw_path):
            # The prefix chose the upstream; "/ping/../todos" must not reach a service as a
            # different path than the one the gateway routed and authorised.
            raise Problem(400, "the path must not contain '.' or '..' segments")
        # Before any slot is taken: a client that dribbles its body holds none.
        body = await read_body(request, self._settings.max_body_bytes, self._settings.body_read_timeout_seconds)
        held = 0
        try:
            for bulkhead in bulkheads:  # the route's own cap first, then the upstream's
                bulkhead.acquire()
                held += 1
            return await self._attempts(request, route, body)
        except Problem as problem:
            if problem.status == 503:
                self._metrics.rejected.labels(reason=shed_reason).inc()
            raise
        finally:
            for bulkhead in bulkheads[:held]:
                bulkhead.release()

    async def _attempts(self, request: web.Request, route: Route, body: bytes | None) -> web.StreamResponse:
        instance = route.upstream.pick()
        try:
            return await self._exchange(request, route, instance, body)
        except UpstreamError as exc:
            if not may_retry(exc, request, honours_idempotency_key=route.honours_idempotency_key):
                raise self._problem(exc, route, instance.url) from None
            other = route.upstream.pick(exclude=instance)
            if other is instance and not_sent(exc):
                # The only instance cannot be reached; trying it again at once would not help.
                raise self._problem(exc, route, instance.url) from None
        request[EXCHANGE].retried = True
        self._metrics.retries.labels(route=route.name).inc()
        log.info("retrying on another instance", route=route.name, failed=instance.url, upstream=other.url)
        try:
            return await self._exchange(request, route, other, body)
        except UpstreamError as exc:
            raise self._problem(exc, route, other.url) from None

    async def _exchange(
        self, request: web.Request, route: Route, instance: Instance, body: bytes | None
    ) -> web.StreamResponse:
        """One attempt on one instance; its outcome feeds the instance's breaker and the metrics."""
        exchange = request[EXCHANGE]
        exchange.upstream = instance.url
        pool = self._pools.instance(instance.url)
        answered = False
        failure = ""
        trial = instance.started()
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + route.timeout_seconds
        conn: Connection | None = None
        timer: asyncio.TimerHandle | None = None
        span = tracing.client_span(request.method, instance.url) if tracing.tracing_enabled() else None
        try:
            conn = await self._connect(pool, route, deadline - loop.time())
            timer = loop.call_at(deadline, conn.expire)  # one timer per exchange: the route's deadline
            extra = tracing.current_carrier() if span is not None else None
            head = request_head(request, exchange.request_id, pool.authority, body, extra)
            conn.send(head, body, head_only=request.method == "HEAD")
            await conn.answer()
            answered = True
            self._metrics.upstream_latency_of(route.name, instance.url).observe(time.perf_counter() - started)
            return await self._relay(request, conn)
        except UpstreamError as exc:
            failure = _failure_reason(exc)
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if conn is not None:
                pool.release(conn)  # reused only when the answer was read to its end
            if span is not None:
                span.end(status=conn.status if conn is not None else 0, failure=failure)
            # A client that went away (cancelled, no failure) says nothing about the instance.
            ok = True if answered and not failure else (False if failure else None)
            instance.finished(ok=ok, connect_failed=failure == "connect", trial=trial)
            if failure:
                self._metrics.upstream_failures.labels(route=route.name, upstream=instance.url, reason=failure).inc()

    @staticmethod
    async def _connect(pool: InstancePool, route: Route, remaining: float) -> Connection:
        """A pooled or new connection; the route's deadline bounds the connect as well."""
        if remaining >= route.connect_timeout_seconds:
            return await pool.connection(route.connect_timeout_seconds)
        try:
            return await pool.connection(max(remaining, 0.001))
        except ConnectTimedOut:
            raise TimedOut("the deadline passed while connecting") from None

    async def _relay(self, request: web.Request, conn: Connection) -> web.StreamResponse:
        """Stream the upstream's answer to the client. Once headers are sent, failures cut the connection.

        A small answer of known length (most API answers) is read whole and sent in one
        write: headers and body in one segment cost one syscall instead of several. A
        failure while reading it is still the proxy's to answer (or retry): the client
        has seen nothing yet.
        """
        length = conn.content_length
        if length is not None and length <= SMALL_BODY_BYTES and request.method != "HEAD":
            body = await conn.read()
            small = web.Response(status=conn.status, body=body)
            # Straight into the response's own headers: no intermediate copy.
            copy_answer_pairs(conn.headers, small.headers, whole_body=True)
            return small
        response = web.StreamResponse(status=conn.status)
        copy_answer_pairs(conn.headers, response.headers, whole_body=False)
        await response.prepare(request)
        transport = request.transport
        if transport is not None:
            # Past the deadline a client that stopped reading is cut, not waited for.
            conn.on_expire = transport.close
        try:
            async for chunk in conn.chunks():
                await response.write(chunk)
            await response.write_eof()
        except (UpstreamError, ConnectionError) as exc:
            # Too late for a problem response. Closing the client connection without the
            # final chunk (or short of Content-Length) tells the client the answer is cut.
            request[EXCHANGE].aborted = True
            log.warning("response stream cut short", reason=type(exc).__name__)
            if request.transport is not None:
                request.transport.close()
        return response

    def _problem(self, exc: BaseException, route: Route, base: str) -> Problem:
        # The client sees which service failed, never hosts, ports or exception text.
        fields: dict[str, Any] = {"route": route.name, "upstream": base, "reason": type(exc).__name__}
        if isinstance(exc, TimeoutError):
            log.warning("upstream timed out", timeout_seconds=route.timeout_seconds, **fields)
            return Problem(504, f"the {route.upstream.name} service did not answer in time")
        log.warning("upstream unreachable", **fields)
        return Problem(502, f"the {route.upstream.name} service is unavailable")
