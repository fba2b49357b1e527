"""The app factory every service builds on.

``create_service_app`` returns a Quart app with the suite's common behaviour
wired once: request ids, JSON access logs, problem+json for every error, body
and time limits, ``/healthz`` ``/readyz`` ``/metrics`` ``/openapi.json``
``/docs``, the database pool and migrations, and start/stop hooks for
background work (event relay and consumers). A service adds its blueprints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import asyncpg
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from quart import Blueprint, Quart, Response, current_app, g, request
from quart.typing import ResponseReturnValue
from quart_schema import QuartSchema, RequestSchemaValidationError, hide
from werkzeug.exceptions import HTTPException, MethodNotAllowed, RequestEntityTooLarge

from services.kit import tracing
from services.kit.config import ServiceSettings
from services.kit.contract import ContractProvider
from services.kit.db import UNAVAILABLE_ERRORS, Database
from services.kit.docs import docs_blueprint
from services.kit.logging import get_logger
from services.kit.metrics import HttpMetrics, new_registry
from services.kit.migrations import MigrationSource, migrate
from services.kit.problem import PROBLEM_CONTENT_TYPE, Problem, problem_body
from services.kit.request_id import REQUEST_ID_HEADER, pick_request_id

log = get_logger("kit.app")

_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

Hook = Callable[["ServiceKit"], Awaitable[None]]
ReadinessCheck = Callable[[], Awaitable[None]]


@dataclass
class ServiceKit:
    """What the app factory attaches to the app (``app.extensions["quartet"]``)."""

    settings: ServiceSettings
    registry: CollectorRegistry
    metrics: HttpMetrics
    db: Database | None
    migrations: Sequence[MigrationSource]
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    draining: bool = False
    # Anything a service attaches (event bus, token verifier, http session...).
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError(f"{self.settings.service_name} has no database")
        return self.db


def kit_of(app: Quart) -> ServiceKit:
    return cast(ServiceKit, app.extensions["quartet"])


def current_kit() -> ServiceKit:
    """The kit of the app handling the current request."""
    return kit_of(current_app)


def current_db() -> Database:
    return current_kit().database


def request_id() -> str:
    """The id of the current request (taken from ``X-Request-ID`` or generated)."""
    rid = g.get("request_id")
    if rid is None:
        rid = pick_request_id(request.headers.get(REQUEST_ID_HEADER))
        g.request_id = rid
    return cast(str, rid)


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
) -> Quart:
    """Build a service's Quart app with everything the suite shares; the service adds blueprints."""
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
    _install_error_handlers(app)
    _install_lifecycle(app, kit)
    app.register_blueprint(_operations_blueprint())
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
        if request.path not in _QUIET_PATHS:
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


def problem_response(problem: Problem) -> Response:
    body = problem_body(
        problem.status,
        request_id(),
        title=problem.title,
        detail=problem.detail,
        type=problem.type,
        errors=problem.errors,
    )
    response = current_app.json.response(body)
    response.status_code = problem.status
    response.content_type = PROBLEM_CONTENT_TYPE
    response.headers.update(problem.headers)
    return cast(Response, response)


def _install_error_handlers(app: Quart) -> None:
    @app.errorhandler(Problem)
    async def on_problem(problem: Problem) -> Response:
        return problem_response(problem)

    @app.errorhandler(RequestSchemaValidationError)
    async def on_invalid(error: RequestSchemaValidationError) -> Response:
        return problem_response(Problem(422, "the request is not valid", errors=_validation_errors(error)))

    @app.errorhandler(HTTPException)
    async def on_http_error(error: HTTPException) -> Response:
        status = error.code or 500
        headers: dict[str, str] = {}
        if isinstance(error, MethodNotAllowed) and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        detail = {
            400: "the request is malformed (a body that is not JSON, say)",
            404: "no such resource",
            405: f"{request.method} is not allowed here",
            413: f"the request body is larger than {kit_of(current_app).settings.max_body_bytes} bytes",
        }.get(status, error.name)
        return problem_response(Problem(status, detail, headers=headers))

    @app.errorhandler(TimeoutError)
    async def on_timeout(error: TimeoutError) -> Response:
        log.warning("dependency timed out", error_type=type(error).__name__)
        return problem_response(Problem(503, "a dependency did not answer in time", headers={"Retry-After": "1"}))

    for error_type in UNAVAILABLE_ERRORS:

        @app.errorhandler(error_type)
        async def on_unavailable(error: Exception) -> Response:
            log.warning("database unavailable", error_type=type(error).__name__, error=str(error))
            return problem_response(
                Problem(503, "the service is temporarily unavailable", headers={"Retry-After": "1"})
            )

    @app.errorhandler(UnicodeDecodeError)
    async def on_undecodable(error: UnicodeDecodeError) -> Response:
        # Quart decodes a JSON body as UTF-8 before parsing it; bytes that are not UTF-8 are the client's fault.
        return problem_response(Problem(400, "the request body is not valid UTF-8"))

    @app.errorhandler(asyncpg.DataError)
    async def on_bad_value(error: asyncpg.DataError) -> Response:
        # A value the schema let through but PostgreSQL cannot store (a NUL byte, say): the input's fault.
        log.info("value refused by the database", error_type=type(error).__name__)
        return problem_response(Problem(422, "the request holds a value that cannot be stored"))

    @app.errorhandler(Exception)
    async def on_unhandled(error: Exception) -> Response:
        log.error("unhandled error", exc_info=error)
        return problem_response(Problem(500, "an internal error occurred; quote the request id when reporting it"))


def _validation_errors(error: RequestSchemaValidationError) -> list[dict[str, Any]]:
    inner = error.validation_error
    errors_method = getattr(inner, "errors", None)
    if callable(errors_method):
        # Never echo the input back: it may hold a password or a token.
        return [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in errors_method(include_url=False, include_input=False, include_context=False)
        ]
    return [{"loc": [], "msg": str(inner), "type": "invalid"}]


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
        for hook in reversed(kit.on_stop):
            try:
                await asyncio.wait_for(hook(kit), timeout=kit.settings.shutdown_grace_seconds)
            except Exception as error:  # one failing hook must not keep the others from running
                log.error("stop hook failed", hook=getattr(hook, "__qualname__", repr(hook)), exc_info=error)
        if kit.db is not None:
            await kit.db.close()
        log.info("service stopped")


def _operations_blueprint() -> Blueprint:
    bp = Blueprint("operations", __name__)

    @bp.get("/healthz")
    @hide
    async def healthz() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @bp.get("/readyz")
    @hide
    async def readyz() -> tuple[dict[str, Any], int]:
        """Ready for traffic: its database and broker are reachable and it is not shutting down."""
        kit = current_kit()
        if kit.draining:
            raise Problem(503, "shutting down", headers={"Retry-After": "1"})
        results = await asyncio.gather(
            *(_check(name, check) for name, check in kit.readiness_checks.items()), return_exceptions=False
        )
        checks = dict(results)
        if not all(ok == "ok" for ok in checks.values()):
            raise Problem(
                503,
                "not ready: " + ", ".join(name for name, ok in checks.items() if ok != "ok"),
                headers={"Retry-After": "1"},
            )
        return {"status": "ok", "checks": checks}, 200

    @bp.get("/metrics")
    @hide
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(current_kit().registry), content_type=CONTENT_TYPE_LATEST)

    return bp


async def _check(name: str, check: ReadinessCheck) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check(), timeout=2.0)
    except Exception as error:
        return name, f"failed: {type(error).__name__}"
    return name, "ok"
