"""The streaming reverse proxy: one request in, the same request to an upstream instance, its answer back.

Bodies stream both ways without being buffered, decompressed or re-encoded.
Hop-by-hop headers stay on their hop; identity headers a client could forge never
reach a service. Failures the client can act on become problems: 413 for a body
over the limit, 502 when the upstream cannot be reached or breaks the exchange,
504 when it takes longer than the route allows.

A request without a body is tried once more on another instance only when the
first attempt provably did no harm:

- it was never sent (connect refused or timed out) and the method is idempotent; or
- it went out on a *reused* kept-alive connection that the instance closed or reset
  before a single byte of an answer arrived, and the method is safe (GET, HEAD,
  OPTIONS). The instance may have idle-closed the connection, but it may also have
  died after its handler committed: a DELETE, PUT, POST or PATCH is never replayed
  (its client gets 502, not a second execution's answer). On the same instance, over
  a fresh connection, when it is the only one.

aiohttp's own replay of idempotent requests on a dropped connection is turned off for
proxied requests (:func:`_no_replay`): that decision is the proxy's.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict
from yarl import URL

from gateway.balancer import Instance
from gateway.config import GatewaySettings
from gateway.metrics import GatewayMetrics
from gateway.middleware import EXCHANGE, REQUEST_ID_HEADER
from gateway.routing import Route
from services.kit.logging import get_logger
from services.kit.problem import Problem
from services.kit.tracing import request_id_trace_config

log = get_logger("gateway.proxy")

# RFC 9110 section 7.6.1, plus the Proxy-* family and whatever Connection names.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"})
# Set by the gateway for the upstream (Host by the client session from the upstream URL);
# Expect: the gateway answers 100-continue itself.
_REPLACED_ON_REQUEST = frozenset({"host", "expect", "x-forwarded-proto", "x-forwarded-host", REQUEST_ID_HEADER.lower()})
_CHUNK_BYTES = 64 * 1024
# Answers up to this size with a known length are relayed in one write (see Proxy._relay).
SMALL_BODY_BYTES = 64 * 1024
# Headers that assert who the caller is. Only a verified token says that: services read
# the token, and no client-supplied claim of identity passes the edge.
IDENTITY_HEADERS = frozenset(
    {
        "x-user-id",
        "x-user",
        "x-user-email",
        "x-auth-subject",
        "x-auth-user",
        "x-auth-scopes",
        "x-auth-client-id",
        "x-authenticated-user",
        "x-authenticated-userid",
        "x-forwarded-user",
        "x-forwarded-email",
        "x-remote-user",
        "remote-user",
        "x-client-id",
    }
)
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Methods a second execution cannot harm even when the first one ran to the end.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Failures where the request provably never left the gateway: no connection at all.
_NOT_SENT = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


class UpstreamDisconnected(aiohttp.ClientConnectionError):
    """The instance closed or reset the connection before the head of its answer arrived.

    The request may or may not have reached a handler: an idle-closed kept-alive
    connection and an instance that died mid-request look alike from here.
    """

    def __init__(self, cause: aiohttp.ClientError) -> None:
        super().__init__(str(cause))
        self.cause = cause

    @property
    def before_any_answer(self) -> bool:
        """No byte of an answer arrived (aiohttp hands over the partial head when some did).

        A reset is only known to be answerless when it came while sending the request.
        """
        if isinstance(self.cause, aiohttp.ServerDisconnectedError):
            return isinstance(self.cause.message, str)
        return isinstance(self.cause, aiohttp.ClientConnectionResetError)


async def _no_replay(request: aiohttp.ClientRequest, handler: aiohttp.ClientHandlerType) -> aiohttp.ClientResponse:
    """Client middleware: a dropped connection surfaces as :class:`UpstreamDisconnected`.

    aiohttp replays an idempotent request (DELETE and PUT included) once on a fresh
    connection when the first one drops; it retries only its own error types, so
    raising another one here leaves the decision to :meth:`Proxy.forward`.
    """
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError, aiohttp.ClientConnectionResetError) as exc:
        raise UpstreamDisconnected(exc) from exc


@dataclass
class _Attempt:
    """One attempt's facts the exception does not carry (the ``trace_request_ctx``)."""

    reused: bool = False  # went out on a pooled kept-alive connection


async def _on_connection_reused(session: aiohttp.ClientSession, context: SimpleNamespace, params: object) -> None:
    attempt = context.trace_request_ctx
    if isinstance(attempt, _Attempt):
        attempt.reused = True


def may_retry(exc: BaseException, method: str, *, reused: bool) -> bool:
    """Whether a failed attempt without a body may be made again (see the module docstring)."""
    if isinstance(exc, _NOT_SENT):
        return method in IDEMPOTENT_METHODS
    if isinstance(exc, UpstreamDisconnected):
        return reused and exc.before_any_answer and method in SAFE_METHODS
    return False


def end_to_end_headers(headers: Mapping[str, str], *, drop: frozenset[str] = frozenset()) -> CIMultiDict[str]:
    """``headers`` without hop-by-hop ones (nor any name in ``drop``, lower case); repeats kept."""
    named = {
        token.strip().lower()
        for name, value in headers.items()
        if name.lower() == "connection"
        for token in value.split(",")
    }
    kept: CIMultiDict[str] = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower.startswith("proxy-") or lower in named or lower in drop:
            continue
        kept.add(name, value)
    return kept


def _failure_reason(exc: BaseException) -> str:
    # Refused or unreachable: the instance is not there ("connect" ejects it at once). A
    # connect timeout may be the gateway's own pool being busy: an ordinary "timeout".
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "broken"


def has_dot_segments(raw_path: str) -> bool:
    """True when a path segment is ``.`` or ``..``, percent-encoded or not (``%2e%2e%2f`` too)."""
    return any(segment in {".", ".."} for segment in unquote(raw_path).split("/"))


def forwarded_headers(request: web.Request, request_id: str) -> CIMultiDict[str]:
    """The headers the upstream gets: the client's end-to-end ones plus X-Forwarded-* and X-Request-ID."""
    headers = end_to_end_headers(request.headers, drop=_REPLACED_ON_REQUEST | IDENTITY_HEADERS | {"x-forwarded-for"})
    prior = ", ".join(request.headers.getall("X-Forwarded-For", ()))
    client = request.remote or "unknown"
    headers["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    headers[REQUEST_ID_HEADER] = request_id
    return headers


class _LimitedBody:
    """The request body as chunks, stopping (and remembering why) past ``limit`` bytes."""

    def __init__(self, content: aiohttp.StreamReader, limit: int) -> None:
        self._content = content
        self._limit = limit
        self.too_large = False

    async def chunks(self) -> AsyncIterator[bytes]:
        seen = 0
        async for chunk in self._content.iter_chunked(_CHUNK_BYTES):
            seen += len(chunk)
            if seen > self._limit:
                self.too_large = True
                raise ValueError("request body over the limit")
            yield chunk


class Proxy:
    """Owns the one client session of the process and forwards requests over it."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        """The open client session (for the token verifier and the health checks)."""
        if self._session is None:
            raise RuntimeError("the client session is not open")
        return self._session

    async def client_session(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: the session opens with the app and closes after in-flight requests."""
        settings = self._settings
        connector = aiohttp.TCPConnector(
            limit=settings.upstream_max_connections,
            # Below the services' hypercorn keep-alive (75 s): see GatewaySettings.
            keepalive_timeout=settings.upstream_keepalive_seconds,
        )
        reuse_trace = aiohttp.TraceConfig()
        reuse_trace.on_connection_reuseconn.append(_on_connection_reused)
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
            ),
            # Bodies pass through byte for byte, with the upstream's Content-Encoding.
            auto_decompress=False,
            # A shared jar would hand one user's cookies to the next user's request.
            cookie_jar=aiohttp.DummyCookieJar(),
            # Forward what the client sent, not aiohttp's defaults (Accept-Encoding above all).
            skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            trace_configs=[reuse_trace, request_id_trace_config()],
        )
        try:
            yield
        finally:
            await self._session.close()
            self._session = None

    def handler_for(self, route: Route) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self.forward(request, route)

        return handle

    async def forward(self, request: web.Request, route: Route) -> web.StreamResponse:
        exchange = request[EXCHANGE]
        exchange.route = route.name
        if has_dot_segments(request.rel_url.raw_path):
            # The prefix chose the upstream; "/ping/../todos" must not reach a service as a
            # different path than the one the gateway routed and authorised.
            raise Problem(400, "the path must not contain '.' or '..' segments")

        limit = self._settings.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Problem(413, f"the request body is larger than {limit} bytes")
        body = _LimitedBody(request.content, limit) if request.body_exists else None

        instance = route.upstream.pick()
        attempt = _Attempt()
        try:
            return await self._exchange(request, route, instance, body, attempt)
        except (aiohttp.ClientError, TimeoutError) as exc:
            if body is not None or not may_retry(exc, request.method, reused=attempt.reused):
                raise self._problem(exc, route, instance.url, body) from None
            other = route.upstream.pick(exclude=instance)
            if other is instance and isinstance(exc, _NOT_SENT):
                # The only instance cannot be reached; trying it again at once would not help.
                raise self._problem(exc, route, instance.url, body) from None
        exchange.retried = True
        self._metrics.retries.labels(route=route.name).inc()
        log.info("retrying on another instance", route=route.name, failed=instance.url, upstream=other.url)
        try:
            return await self._exchange(request, route, other, None, _Attempt())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise self._problem(exc, route, other.url, None) from None

    async def _exchange(
        self, request: web.Request, route: Route, instance: Instance, body: _LimitedBody | None, attempt: _Attempt
    ) -> web.StreamResponse:
        """One attempt on one instance; its outcome feeds the instance's breaker and the metrics."""
        session = self.session()
        exchange = request[EXCHANGE]
        exchange.upstream = instance.url
        url = URL(instance.url + request.rel_url.raw_path_qs, encoded=True)
        timeout = aiohttp.ClientTimeout(total=route.timeout_seconds, connect=route.connect_timeout_seconds)
        answered = False
        failure = ""
        trial = instance.started()
        started = time.perf_counter()
        try:
            async with session.request(
                request.method,
                url,
                headers=forwarded_headers(request, exchange.request_id),
                data=body.chunks() if body else None,
                timeout=timeout,
                allow_redirects=False,
                middlewares=(_no_replay,),
                trace_request_ctx=attempt,
            ) as upstream:
                answered = True
                self._metrics.upstream_latency.labels(route=route.name, upstream=instance.url).observe(
                    time.perf_counter() - started
                )
                return await self._relay(request, upstream)
        except (aiohttp.ClientError, TimeoutError) as exc:
            failure = _failure_reason(exc)
            raise
        finally:
            # A body over the limit is the client's fault, and a client that went away
            # (cancelled, no failure) says nothing about the instance either.
            client_fault = body is not None and body.too_large
            ok = True if answered or client_fault else (False if failure else None)
            instance.finished(ok=ok, connect_failed=failure == "connect", trial=trial)
            if failure and not client_fault:
                self._metrics.upstream_failures.labels(route=route.name, upstream=instance.url, reason=failure).inc()

    async def _relay(self, request: web.Request, upstream: aiohttp.ClientResponse) -> web.StreamResponse:
        """Stream the upstream's answer to the client. Once headers are sent, failures cut the connection.

        A small answer of known length (most API answers) is read whole and sent in one
        write: headers and body in one segment cost one syscall instead of several.
        """
        headers = end_to_end_headers(upstream.headers)
        length = upstream.content_length
        if length is not None and length <= SMALL_BODY_BYTES and request.method != "HEAD":
            body = await upstream.read()  # a failure here is still answered as a problem (502/504)
            headers.popall("Content-Length", None)
            return web.Response(status=upstream.status, headers=headers, body=body)
        response = web.StreamResponse(status=upstream.status, headers=headers)
        await response.prepare(request)
        try:
            async for chunk in upstream.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
        except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
            # Too late for a problem response. Closing the client connection without the
            # final chunk (or short of Content-Length) tells the client the answer is cut.
            request[EXCHANGE].aborted = True
            log.warning("response stream cut short", reason=type(exc).__name__)
            if request.transport is not None:
                request.transport.close()
        return response

    def _problem(self, exc: BaseException, route: Route, base: str, body: _LimitedBody | None) -> Problem:
        # The client sees which service failed, never hosts, ports or exception text.
        fields: dict[str, Any] = {"route": route.name, "upstream": base, "reason": type(exc).__name__}
        if body is not None and body.too_large:
            return Problem(413, f"the request body is larger than {self._settings.max_body_bytes} bytes")
        if isinstance(exc, TimeoutError):
            log.warning("upstream timed out", timeout_seconds=route.timeout_seconds, **fields)
            return Problem(504, f"the {route.name} service did not answer in time")
        log.warning("upstream unreachable", **fields)
        return Problem(502, f"the {route.name} service is unavailable")
