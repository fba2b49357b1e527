"""OpenTelemetry for every process of the suite: one setup, one W3C Trace Context from the SPA to the PDF.

:func:`setup_tracing` is the only place tracing is switched on (services, the
report worker and the gateway all call it once at start). With an OTLP endpoint
in the settings it installs the SDK's tracer provider (sampler from
``OTEL_TRACES_SAMPLER``/``_ARG``, a batch processor, the OTLP/HTTP exporter) and
the maintained instrumentations: aiohttp server and client, asyncpg, aio-pika,
redis (the ASGI middleware is put around each Quart app by the app factory).
Without an endpoint nothing is installed: no spans, no propagation cost.

How the context travels (docs/observability.md):

1. HTTP: the server instrumentations continue an incoming ``traceparent``
   (``tracestate`` too), the aiohttp client instrumentation injects it into every
   outgoing request (proxy, token and JWKS fetches, the worker's calls to todos).
2. Outbox: :func:`current_carrier` is stored with the event row in the writing
   transaction; the relay publishes inside :func:`producer_span`, a child of the
   stored context, and the aio-pika instrumentation injects the headers.
3. AMQP: the aio-pika instrumentation extracts them around every consumer
   callback (the kit's consumer and the report worker): the handling is a child
   span of the publication, so one user action is one trace.

Besides the trace, :func:`request_id_trace_config` makes an aiohttp session send
the ``X-Request-ID`` bound in the log context, tracing on or off.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import aiohttp
import structlog
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode

from services.kit.config import ServiceSettings
from services.kit.logging import get_logger

log = get_logger("kit.tracing")

REQUEST_ID_HEADER = "X-Request-ID"
# W3C Trace Context level 2: the response names the trace (and the server's span) it belongs to.
TRACERESPONSE_HEADER = "traceresponse"
# Quart paths that would only add noise to the traces (probes and scrapes).
_UNTRACED_PATHS = "/healthz,/readyz,/metrics"
_TRACER_NAME = "quartet"

_provider: Any = None  # the SDK's TracerProvider once installed (process-wide, as OpenTelemetry's own is)


def tracing_enabled() -> bool:
    """True once :func:`setup_tracing` installed the SDK in this process."""
    return _provider is not None


def setup_tracing(settings: ServiceSettings, service_name: str | None = None) -> bool:
    """Install OpenTelemetry for this process when the settings name an OTLP endpoint; True if installed.

    Idempotent. ``service_name`` (default ``OTEL_SERVICE_NAME``, then the settings'
    ``service_name``) is the ``service.name`` of every span of the process.
    """
    global _provider
    url = settings.otlp_traces_url
    if url is None or _provider is not None:
        return _provider is not None
    # Imported here: a process without tracing never loads the SDK or the instrumentations.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aio_pika import AioPikaInstrumentor
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = settings.otel_service_name or service_name or settings.service_name
    resource = Resource.create(
        {"service.name": name, "service.instance.id": settings.instance, "cloud.region": settings.region}
    )
    provider = TracerProvider(resource=resource, sampler=_sampler(settings))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=url)))
    trace.set_tracer_provider(provider)
    for instrumentor in (
        AioHttpClientInstrumentor(),
        AioHttpServerInstrumentor(),
        AsyncPGInstrumentor(),  # type: ignore[no-untyped-call]
        AioPikaInstrumentor(),
        RedisInstrumentor(),
    ):
        instrumentor.instrument()
    _provider = provider
    log.info("tracing on", exporter=url, sampler=settings.otel_traces_sampler, ratio=settings.otel_traces_sampler_arg)
    return True


def shutdown_tracing() -> None:
    """Export what is still buffered (the SDK also does this at interpreter exit)."""
    if _provider is not None:
        _provider.shutdown()


def _sampler(settings: ServiceSettings) -> Any:
    from opentelemetry.sdk.trace import sampling

    ratio = settings.otel_traces_sampler_arg
    return {
        "always_on": lambda: sampling.ALWAYS_ON,
        "always_off": lambda: sampling.ALWAYS_OFF,
        "traceidratio": lambda: sampling.TraceIdRatioBased(ratio),
        "parentbased_always_on": lambda: sampling.ParentBased(sampling.ALWAYS_ON),
        "parentbased_always_off": lambda: sampling.ParentBased(sampling.ALWAYS_OFF),
        "parentbased_traceidratio": lambda: sampling.ParentBasedTraceIdRatio(ratio),
    }[settings.otel_traces_sampler]()  # type: ignore[no-untyped-call]


def instrument_asgi(asgi_app: Any) -> Any:
    """``asgi_app`` wrapped in the ASGI server instrumentation (as is, when tracing is off)."""
    if _provider is None:
        return asgi_app
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    # No spans for each receive/send message: one server span per request is what people read.
    return OpenTelemetryMiddleware(asgi_app, excluded_urls=_UNTRACED_PATHS, exclude_spans=["receive", "send"])


def name_server_span(method: str, route: str) -> None:
    """Name the current server span after the route template (``GET /todos/<uuid:todo_id>``)."""
    span = trace.get_current_span()
    if span.is_recording():
        span.update_name(f"{method} {route}")
        span.set_attribute("http.route", route)


def traceresponse() -> str | None:
    """The ``traceresponse`` value of the current span (W3C Trace Context level 2), None outside a trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return f"00-{context.trace_id:032x}-{context.span_id:016x}-{int(context.trace_flags):02x}"


def current_carrier() -> dict[str, str]:
    """The current trace context as W3C headers (``traceparent``, ``tracestate``); empty outside a trace."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier


@contextmanager
def producer_span(name: str, carrier: dict[str, str], **attributes: str) -> Iterator[dict[str, str]]:
    """A PRODUCER span, child of the context stored in ``carrier``; yields the headers that continue it.

    Without a stored context (an event written outside any trace) no span is made.
    """
    if not carrier:
        yield {}
        return
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(
        name, context=propagate.extract(carrier), kind=SpanKind.PRODUCER, attributes=attributes
    ):
        yield current_carrier()


async def _send_request_id(
    session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
) -> None:
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    if isinstance(request_id, str) and REQUEST_ID_HEADER not in params.headers:
        params.headers[REQUEST_ID_HEADER] = request_id


def request_id_trace_config() -> aiohttp.TraceConfig:
    """An aiohttp ``TraceConfig``: requests carry the ``request_id`` of the log context as ``X-Request-ID``."""
    config = aiohttp.TraceConfig()
    config.on_request_start.append(_send_request_id)
    return config


class ClientSpan:
    """A CLIENT span around one outgoing exchange made without an instrumented client (the gateway's
    proxy, the page cache's Redis link).

    Current from its start until :meth:`end`, so :func:`current_carrier` gives the headers
    that make the upstream's server span its child, as the aiohttp client instrumentation does.
    """

    def __init__(self, method: str, url: str, system: str = "") -> None:
        attributes = {"db.system.name": system} if system else {"http.request.method": method}
        attributes["server.address"] = url
        self._span = trace.get_tracer(_TRACER_NAME).start_span(method, kind=SpanKind.CLIENT, attributes=attributes)
        self._token = otel_context.attach(trace.set_span_in_context(self._span))

    def end(self, *, status: int, failure: str = "") -> None:
        if status:
            self._span.set_attribute("http.response.status_code", status)
        if failure or status >= 500:
            self._span.set_status(StatusCode.ERROR, failure or None)
        otel_context.detach(self._token)
        self._span.end()


def client_span(method: str, url: str, system: str = "") -> ClientSpan:
    """A :class:`ClientSpan` for ``method`` to ``url`` (call only when :func:`tracing_enabled`);
    with ``system`` (``"redis"``) a database call named by its command instead of an HTTP exchange."""
    return ClientSpan(method, url, system)
