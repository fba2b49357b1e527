"""What happens around every request: its request id, error rendering, metrics, the access log.

Errors have one shape here as in the services: handlers raise
:class:`services.kit.problem.Problem` (or aiohttp raises its 404/405), and
:func:`request_middleware` answers ``application/problem+json`` with the request id.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.access_log import AccessLog
from gateway.metrics import GatewayMetrics
from services.kit import tracing
from services.kit.logging import get_logger
from services.kit.problem import PROBLEM_CONTENT_TYPE, Problem, problem_body
from services.kit.request_id import REQUEST_ID_HEADER, pick_request_id

# Logged and counted when the client went away before the answer was sent (nginx's code).
_CLIENT_CLOSED = 499

log = get_logger("gateway.access")


@dataclass
class Exchange:
    """What the access log and the metrics report about one request."""

    request_id: str
    route: str
    upstream: str = ""
    aborted: bool = False
    client: str = ""
    subject: str = ""  # the verified token's sub, for protected routes
    limited: str = ""  # the budget that answered 429
    retried: bool = False
    trace_response: str | None = None  # W3C traceresponse of the gateway's server span, when traced


EXCHANGE = web.RequestKey("exchange", Exchange)


def request_id_from(headers: Mapping[str, str]) -> str:
    """The client's X-Request-ID when it is a sane token, else a fresh one."""
    return pick_request_id(headers.get(REQUEST_ID_HEADER))


def problem_response(
    status: int,
    request_id: str,
    *,
    title: str | None = None,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.json_response(
        problem_body(status, request_id, title=title, detail=detail),
        status=status,
        content_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def request_middleware(metrics: GatewayMetrics, access_log: AccessLog) -> Middleware:
    """The outermost middleware: every response, error or not, passes through here."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        resource = request.match_info.route.resource
        exchange = Exchange(request_id_from(request.headers), resource.canonical if resource else "unmatched")
        if tracing.tracing_enabled():  # no span without the SDK: skip the context look-up
            exchange.trace_response = tracing.traceresponse()
        request[EXCHANGE] = exchange
        started = time.perf_counter()
        status = 500
        metrics.in_flight += 1
        # Bound for every line logged while this request is handled (and for the control
        # session's X-Request-ID); the tokens restore what was bound before, if anything.
        bound = structlog.contextvars.bind_contextvars(request_id=exchange.request_id)
        try:
            response = await _respond(request, handler, exchange.request_id)
            status = response.status
            return response
        except asyncio.CancelledError:
            status = _CLIENT_CLOSED
            raise
        finally:
            structlog.contextvars.reset_contextvars(**bound)
            metrics.in_flight -= 1
            seconds = time.perf_counter() - started
            metrics.observe(exchange.route, exchange.upstream, status, seconds)
            # Only the path: query strings can carry codes and tokens (OAuth callbacks).
            duration_ms = round(seconds * 1000, 1)
            line = {
                "component": "gateway.access",
                "request_id": exchange.request_id,
                "method": request.method,
                "path": request.path,
                "route": exchange.route,
                "upstream": exchange.upstream,
                "status": status,
                "duration_ms": duration_ms,
                "client": exchange.client or request.remote,
            }
            _add_extras(line, exchange)
            access_log.write(line, status=status, duration_ms=duration_ms)

    return middleware


def _add_extras(extras: dict[str, object], exchange: Exchange) -> None:
    """Access-log fields that only some requests have."""
    if exchange.subject:
        extras["subject"] = exchange.subject
    if exchange.limited:
        extras["rate_limited"] = exchange.limited
    if exchange.retried:
        extras["retried"] = True
    if exchange.aborted:
        extras["aborted"] = True


async def _respond(request: web.Request, handler: Handler, request_id: str) -> web.StreamResponse:
    try:
        return await handler(request)
    except Problem as problem:
        return problem_response(
            problem.status, request_id, title=problem.title, detail=problem.detail, headers=problem.headers
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return problem_response(exc.status, request_id, headers=allow)
    except Exception:
        log.exception("unhandled error", request_id=request_id)
        if request.writer.output_size > 0 and request.transport is not None:
            # Part of a response is on the wire already: cut the connection so the
            # client sees a truncated answer rather than a second one glued on.
            request.transport.close()
        return problem_response(500, request_id)


def add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    """Before a response is sent: every response carries the request id (and trace id), whoever made it."""
    exchange = request.get(EXCHANGE)
    if exchange is not None:
        response.headers[REQUEST_ID_HEADER] = exchange.request_id
        if exchange.trace_response is not None:
            response.headers[tracing.TRACERESPONSE_HEADER] = exchange.trace_response
