"""The app factory every service builds on.

``create_service_app`` returns a Quart app with the suite's common behaviour
wired once: request ids, JSON access logs, problem+json for every error
(:mod:`services.kit.errors`), body and time limits, ``/healthz`` ``/readyz``
``/metrics`` (:mod:`services.kit.operations`), ``/openapi.json`` ``/docs``, the
database pool and migrations, the service's typed state and start/stop hooks for
background work (:mod:`services.kit.context`, :mod:`services.kit.tasks`). A service
adds its blueprints.

The module runs past 300 lines because the per-request path (request id, access line,
metrics, deadline) is kept beside the factory that precomputes its per-route facts: one
place to read when measuring what a request costs (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from quart import Blueprint, Quart, Response, g, request
from quart.sessions import NullSession, SecureCookieSessionInterface, SessionMixin
from quart.typing import ResponseReturnValue
from quart.wrappers import BaseRequestWebsocket
from quart_schema import QuartSchema
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import Rule

from services.kit import tracing, type_adapters
from services.kit.config import ServiceSettings
from services.kit.context import ServiceKit, current_db, current_kit, kit_of, request_id
from services.kit.contract import ContractProvider
from services.kit.db import Database
from services.kit.docs import docs_blueprint
from services.kit.errors import install_error_handlers, problem_response
from services.kit.logging import access_line, get_logger
from services.kit.metrics import HttpMetrics, new_registry
from services.kit.migrations import MigrationSource, migrate
from services.kit.operations import QUIET_PATHS, operations_blueprint
from services.kit.problem import Problem
from services.kit.request_id import REQUEST_ID_HEADER, pick_request_id

__all__ = [
    "ServiceApp",
    "ServiceKit",
    "create_service_app",
    "current_db",
    "current_kit",
    "handler_deadline",
    "kit_of",
    "long_lived",
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


def long_lived(response: Response) -> Response:
    """Let a streamed ``response`` (Server-Sent Events) outlive the request's deadlines.

    The handler's deadline still covers everything up to the response (token, checks); the
    body then streams without Quart's ``RESPONSE_TIMEOUT``. Such a body must end by rules of
    its own (a write to a client that went away fails; services/live ends streams itself).
    """
    response.timeout = None
    return response


class NullSessionInterface(SecureCookieSessionInterface):
    """No cookie session: kit services keep no session (tokens say who calls). Quart would
    otherwise look for a signing key and build an empty session object at every request."""

    _null = NullSession()

    async def open_session(self, app: Quart, request: BaseRequestWebsocket) -> NullSession:
        return self._null

    async def make_null_session(self, app: Quart) -> NullSession:
        return self._null

    async def save_session(self, app: Quart, session: SessionMixin, response: Any) -> None:
        return None


class DeadlineWatch:
    """The handlers' deadlines, held by one timer for all of them instead of one per request.

    A request registers its task and when it is due; a timer ticking every
    :attr:`TICK` seconds while any is registered cancels the tasks past due (so a
    deadline fires up to one tick late). The handler sees the cancellation where it
    waits, as with ``asyncio.timeout``; :meth:`leave` says whether the watch cancelled it.
    """

    TICK = 0.05

    def __init__(self) -> None:
        self._due: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def enter(self, seconds: float) -> tuple[asyncio.Task[Any], int]:
        """Watch the current task for ``seconds``; returns it and its cancellation count now."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a task")
        loop = task.get_loop()
        self._due[task] = loop.time() + seconds
        if self._timer is None or self._loop is not loop:  # a test's new loop: re-arm on it
            self._loop = loop
            self._timer = loop.call_later(self.TICK, self._check)
        return task, task.cancelling()

    def leave(self, task: asyncio.Task[Any]) -> bool:
        """Stop watching ``task``; True when the watch cancelled it for being late."""
        self._due.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _check(self) -> None:
        loop = self._loop
        assert loop is not None
        now = loop.time()
        late = [task for task, due in self._due.items() if due <= now]
        for task in late:
            del self._due[task]
            self._expired.add(task)
            task.cancel()
        self._timer = loop.call_later(self.TICK, self._check) if self._due else None


@dataclass(frozen=True, slots=True)
class _Route:
    """What is fixed per route, worked out at its first request: its template and deadline."""

    template: str
    deadline: float


class ServiceApp(Quart):
    """Quart with a deadline on every handler: past ``request_timeout_seconds`` (or the
    handler's own, see :func:`handler_deadline`) → 504 problem."""

    session_interface = NullSessionInterface()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._routes: dict[int, _Route] = {}  # by id(rule): the rules live as long as the app
        self._deadlines = DeadlineWatch()

    def route_of(self, rule: Rule | None) -> _Route:
        """The template and deadline of ``rule`` (``unmatched`` with the default deadline for None)."""
        if rule is None:
            return _Route("unmatched", kit_of(self).settings.request_timeout_seconds)
        route = self._routes.get(id(rule))
        if route is None:
            route = self._routes[id(rule)] = _Route(rule.rule, self._deadline_of(rule.endpoint))
        return route

    def _deadline_of(self, endpoint: str) -> float:
        settings = kit_of(self).settings
        own: Deadline | None = getattr(self.view_functions.get(endpoint), _DEADLINE_ATTRIBUTE, None)
        if own is None:
            return settings.request_timeout_seconds
        return float(own(settings) if callable(own) else own)

    def deadline_for(self, request_context: Any = None) -> float:
        """The deadline of the handler the current request goes to."""
        return self.route_of((request_context.request if request_context is not None else request).url_rule).deadline

    async def dispatch_request(self, request_context: Any = None) -> ResponseReturnValue:
        task, cancelling = self._deadlines.enter(self.deadline_for(request_context))
        try:
            return await super().dispatch_request(request_context)
        except asyncio.CancelledError:
            # Cancelled by the watch, and by nobody else (a client that went away, say): 504.
            if self._deadlines.leave(task) and task.uncancel() <= cancelling:
                raise Problem(504, "the request took too long and was abandoned") from None
            raise
        finally:
            self._deadlines.leave(task)
        # A dependency's own timeout (pool acquire, statement) is a TimeoutError: answered as 503.


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
    type_adapters.install()
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
    _answer_responses_as_they_are(app)
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


def _answer_responses_as_they_are(app: Quart) -> None:
    """A handler's ready ``Response`` (the hot reads, every problem) goes straight to Quart:
    quart-schema's wrapper of ``make_response`` would probe it for a model to dump, twice."""
    converting = app.make_response
    plain = Quart.make_response.__get__(app)

    async def make_response(value: Any) -> Any:
        if type(value) is Response:
            return await plain(value)
        return await converting(value)

    app.make_response = make_response  # type: ignore[method-assign,assignment]


def _install_request_hooks(app: ServiceApp, kit: ServiceKit) -> None:
    metrics = kit.metrics
    max_body = kit.settings.max_body_bytes

    @app.before_request
    async def start_request() -> None:
        req = request._get_current_object()  # type: ignore[attr-defined,unused-ignore]  # typed from Quart 0.23 (3.13)
        rid = pick_request_id(req.headers.get(REQUEST_ID_HEADER))
        state = g._get_current_object()
        state.request_id = rid
        state.started = time.perf_counter()
        # The request runs in a task of its own: what it binds dies with it, nothing to clear.
        structlog.contextvars.bind_contextvars(request_id=rid)
        rule = req.url_rule
        if rule is not None and tracing.tracing_enabled():
            tracing.name_server_span(req.method, rule.rule)
        metrics.in_flight.inc()
        state.in_flight = True
        # Refuse an oversized body up front, whatever the route (chunked bodies are cut while read).
        if req.method in _BODY_METHODS and (req.content_length or 0) > max_body:
            raise RequestEntityTooLarge()

    @app.after_request
    async def finish_request(response: Response) -> Response:
        req = request._get_current_object()  # type: ignore[attr-defined,unused-ignore]  # typed from Quart 0.23 (3.13)
        state = g._get_current_object()
        rid = request_id()
        headers = response.headers
        headers[REQUEST_ID_HEADER] = rid
        if tracing.tracing_enabled():
            trace_response = tracing.traceresponse()
            if trace_response is not None:
                headers[tracing.TRACERESPONSE_HEADER] = trace_response
        route = app.route_of(req.url_rule).template
        started = getattr(state, "started", None)
        elapsed = time.perf_counter() - started if started is not None else 0.0
        status = response.status_code
        method = req.method
        metrics.observe(method, route, status, elapsed)
        path = req.path
        if path not in QUIET_PATHS:
            access_line(
                rid,
                method=method,
                path=path,
                route=route,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )
        return response

    @app.teardown_request
    async def end_request(_: BaseException | None) -> None:
        if g.pop("in_flight", False):
            metrics.in_flight.dec()


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
