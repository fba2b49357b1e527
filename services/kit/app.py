"""The app factory every service builds on.

``create_service_app`` returns a Quart app with the suite's common behaviour
wired once: request ids, JSON access logs, problem+json for every error
(:mod:`services.kit.errors`), body and time limits, ``/healthz`` ``/readyz``
``/metrics`` (:mod:`services.kit.operations`), ``/openapi.json`` ``/docs``, the
database pool and migrations, the service's typed state and start/stop hooks for
background work (:mod:`services.kit.context`, :mod:`services.kit.tasks`). A service
adds its blueprints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from quart import Blueprint, Quart, Response, g, request
from quart.typing import ResponseReturnValue
from quart_schema import QuartSchema
from werkzeug.exceptions import RequestEntityTooLarge

from services.kit import tracing
from services.kit.config import ServiceSettings
from services.kit.context import ServiceKit, current_db, current_kit, kit_of, request_id
from services.kit.contract import ContractProvider
from services.kit.db import Database
from services.kit.docs import docs_blueprint
from services.kit.errors import install_error_handlers, problem_response
from services.kit.logging import get_logger
from services.kit.metrics import HttpMetrics, new_registry
from services.kit.migrations import MigrationSource, migrate
from services.kit.operations import QUIET_PATHS, operations_blueprint
from services.kit.problem import Problem
from services.kit.request_id import REQUEST_ID_HEADER

__all__ = [
    "ServiceApp",
    "ServiceKit",
    "create_service_app",
    "current_db",
    "current_kit",
    "handler_deadline",
    "kit_of",
    "problem_response",
    "request_id",
]

log = get_logger("kit.app")

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


Deadline = float | Callable[[Any], float]
_DEADLINE_ATTRIBUTE = "__kit_handler_deadline__"


def handler_deadline(seconds: Deadline) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a slow handler a deadline of its own instead of ``REQUEST_TIMEOUT_SECONDS``.

    ``seconds`` is a number or a function of the service's settings
    (``lambda settings: settings.max_delay_ms / 1000 + 1``). Put it right under the
    route decorator. The gateway's timeout for that route must stay a little above it
    (gateway/routing.py), so the service answers its own 504 before the gateway gives up.
    """

    def mark(handler: Callable[..., Any]) -> Callable[..., Any]:
        setattr(handler, _DEADLINE_ATTRIBUTE, seconds)
        return handler

    return mark


class ServiceApp(Quart):
    """Quart with a deadline on every handler: past ``request_timeout_seconds`` (or the
    handler's own, see :func:`handler_deadline`) → 504 problem."""

    def deadline_for(self, request_context: Any = None) -> float:
        """The deadline of the handler the current request goes to."""
        settings = kit_of(self).settings
        rule = (request_context.request if request_context is not None else request).url_rule
        handler = self.view_functions.get(rule.endpoint) if rule is not None else None
        own: Deadline | None = getattr(handler, _DEADLINE_ATTRIBUTE, None)
        if own is None:
            return settings.request_timeout_seconds
        return float(own(settings) if callable(own) else own)

    async def dispatch_request(self, request_context: Any = None) -> ResponseReturnValue:
        deadline = asyncio.timeout(self.deadline_for(request_context))
        try:
            async with deadline:
                return await super().dispatch_request(request_context)
        except TimeoutError:
            if deadline.expired():
                raise Problem(504, "the request took too long and was abandoned") from None
            raise  # a dependency's own timeout (pool acquire, statement): answered as 503


def create_service_app(
    settings: ServiceSettings,
    *,
    blueprints: Sequence[Blueprint],
    title: str,
    description: str = "",
    migrations: Sequence[MigrationSource] = (),
    security_schemes: dict[str, Any] | None = None,
    state: object = None,
) -> Quart:
    """Build a service's Quart app with everything the suite shares; the service adds blueprints.

    ``state`` is the service's own typed state, built once by its ``create_app`` and read
    back with :func:`services.kit.context.current_state`.
    """
    app = ServiceApp(settings.service_name)
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        BODY_TIMEOUT=settings.request_timeout_seconds,
        RESPONSE_TIMEOUT=settings.request_timeout_seconds * 4,
        PROPAGATE_EXCEPTIONS=False,
        JSON_SORT_KEYS=False,
    )
    registry = new_registry()
    kit = ServiceKit(
        settings=settings,
        registry=registry,
        metrics=HttpMetrics.register(registry),
        db=Database(settings) if settings.database_url else None,
        migrations=migrations,
        state=state,
    )
    app.extensions["quartet"] = kit
    QuartSchema(
        app,
        openapi_path="/openapi.json",
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        info={"title": title, "version": "1.0.0", "description": description},
        security_schemes=security_schemes,
        openapi_provider_class=ContractProvider,
    )
    _install_request_hooks(app, kit)
    install_error_handlers(app)
    _install_lifecycle(app, kit)
    app.register_blueprint(operations_blueprint())
    app.register_blueprint(docs_blueprint(title))
    for bp in blueprints:
        app.register_blueprint(bp)
    # The server span (continuing the caller's traceparent) around everything above.
    app.asgi_app = tracing.instrument_asgi(app.asgi_app)  # type: ignore[method-assign]
    return app


def _install_request_hooks(app: Quart, kit: ServiceKit) -> None:
    @app.before_request
    async def start_request() -> None:
        rid = request_id()
        g.started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=rid)
        if request.url_rule is not None:
            tracing.name_server_span(request.method, request.url_rule.rule)
        kit.metrics.in_flight.inc()
        g.in_flight = True
        # Refuse an oversized body up front, whatever the route (chunked bodies are cut while read).
        if request.method in _BODY_METHODS and (request.content_length or 0) > kit.settings.max_body_bytes:
            raise RequestEntityTooLarge()

    @app.after_request
    async def finish_request(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = request_id()
        trace_response = tracing.traceresponse()
        if trace_response is not None:
            response.headers[tracing.TRACERESPONSE_HEADER] = trace_response
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        kit.metrics.requests.labels(request.method, route, str(response.status_code)).inc()
        kit.metrics.latency.labels(request.method, route).observe(elapsed)
        if request.path not in QUIET_PATHS:
            log.info(
                "request",
                method=request.method,
                path=request.path,
                route=route,
                status=response.status_code,
                duration_ms=round(elapsed * 1000, 2),
            )
        return response

    @app.teardown_request
    async def end_request(_: BaseException | None) -> None:
        if g.pop("in_flight", False):
            kit.metrics.in_flight.dec()


def _install_lifecycle(app: Quart, kit: ServiceKit) -> None:
    @app.before_serving
    async def start() -> None:
        if kit.db is not None:
            await migrate(kit.db.dsn, kit.migrations, wait_seconds=kit.settings.db_startup_timeout_seconds)
            await kit.db.open()
            kit.readiness_checks.setdefault("database", kit.db.ping)
        for hook in kit.on_start:
            await hook(kit)
        log.info("service started", port=kit.settings.port, region=kit.settings.region, instance=kit.settings.instance)

    @app.after_serving
    async def stop() -> None:
        kit.draining = True
        await kit.tasks.stop(timeout=kit.settings.shutdown_grace_seconds)  # before the parts they use close
        for hook in reversed(kit.on_stop):
            try:
                await asyncio.wait_for(hook(kit), timeout=kit.settings.shutdown_grace_seconds)
            except Exception as error:  # one failing hook must not keep the others from running
                log.error("stop hook failed", hook=getattr(hook, "__qualname__", repr(hook)), exc_info=error)
        if kit.db is not None:
            await kit.db.close()
        log.info("service stopped")
