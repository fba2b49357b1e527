"""JSON-lines logging with structlog.

Every line carries ``service`` and, inside a request or an event handler, the
``request_id`` bound with :func:`structlog.contextvars.bind_contextvars`, and the
``trace_id`` and ``span_id`` of the OpenTelemetry span current when it is written
(inside a trace: a client's ``traceparent``, or any span while tracing is on).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

import structlog
from opentelemetry import trace

_SECRET_KEYS = frozenset(
    {"password", "secret", "client_secret", "token", "access_token", "refresh_token", "authorization", "code_verifier"}
)


def _redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # Defence in depth: a secret passed to a log call by mistake never reaches the output.
    for key in event_dict.keys() & _SECRET_KEYS:
        event_dict[key] = "[redacted]"
    return event_dict


def _add_trace_ids(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    # The same hex ids a trace backend shows, so a log line leads to its span and back.
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict.setdefault("trace_id", f"{context.trace_id:032x}")
        event_dict.setdefault("span_id", f"{context.span_id:016x}")
    return event_dict


# What configure_logging set up, for the access lines (written without structlog's chain).
_access: dict[str, Any] = {"service": None, "enabled": True, "flush_pending": False}
# Access lines are flushed in batches this often (services/kit/logging.access_line), except
# those of server errors and of requests slower than SLOW_REQUEST_MS, flushed at once.
ACCESS_FLUSH_SECONDS = 0.05
SLOW_REQUEST_MS = 1000.0


def configure_logging(service: str, level: str = "INFO") -> None:
    """Route structlog and stdlib logging to JSON lines on stdout, tagged with ``service``."""

    def add_service(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict.setdefault("service", service)
        return event_dict

    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        numeric_level = logging.INFO
    _access.update(service=service, enabled=numeric_level <= logging.INFO)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        add_service,
        _add_trace_ids,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(numeric_level),
        # No file: each line goes to sys.stdout as it is when written. A module's logger is
        # cached on first use, so a file fixed here would outlive a replaced sys.stdout
        # (an entry point run in-process by a test, then the test's capture closed).
        logger_factory=structlog.PrintLoggerFactory(),
        cache_logger_on_first_use=True,
    )
    # Libraries log through stdlib logging; render those lines the same way.
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(numeric_level, logging.INFO) if numeric_level < logging.INFO else numeric_level)
    for noisy in ("hypercorn.access", "aiormq", "aio_pika"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> Any:
    """A structlog logger; ``name`` is added as ``component``."""
    # Stays a lazy proxy, so module-level loggers pick up configure_logging() made later.
    return structlog.get_logger() if name is None else structlog.get_logger(component=name)


_dumps = json.JSONEncoder(ensure_ascii=True, separators=(", ", ": ")).encode
_access_log = structlog.get_logger(component="kit.app")


def access_line(request_id: str, **fields: Any) -> None:
    """Write one request's JSON access line (``event: "request"``), as a structlog ``info`` would.

    The same fields as every other line (``service``, ``request_id``, ``trace_id`` and
    ``span_id`` inside a trace, ``level``, ``timestamp``, ``component``), rendered with one
    ``json`` call instead of the processor chain: it is written once per request. The
    ``fields`` are the kit's own (method, path, route, status, duration): nothing to redact.
    Before :func:`configure_logging` (an app in a test), it goes through structlog as is.
    """
    service = _access["service"]
    if service is None:
        _access_log.info("request", **fields)
        return
    if not _access["enabled"]:
        return
    line = {"component": "kit.app", "event": "request", **fields, "request_id": request_id, "service": service}
    write_access_line(line, status=fields.get("status", 0), duration_ms=fields.get("duration_ms", 0.0))


def write_access_line(line: dict[str, Any], *, status: int, duration_ms: float) -> None:
    """Finish ``line`` (trace ids inside a trace, ``level``, ``timestamp``) and write it as one JSON line.

    The services' :func:`access_line` and the gateway's access log both end here. One
    write(2) per line would cost as much as rendering it: lines of answered requests reach
    the file together, at most ACCESS_FLUSH_SECONDS later. A server error or a slow request
    goes out at once (with whatever waits before it), as every other line does.
    """
    context = trace.get_current_span().get_span_context()
    if context.is_valid:  # the same hex ids as _add_trace_ids
        line["trace_id"] = f"{context.trace_id:032x}"
        line["span_id"] = f"{context.span_id:016x}"
    line["level"] = "info"
    line["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    out = sys.stdout
    out.write(_dumps(line) + "\n")
    if status >= 500 or duration_ms >= SLOW_REQUEST_MS:
        out.flush()
    elif not _access["flush_pending"]:
        _access["flush_pending"] = True
        try:
            asyncio.get_running_loop().call_later(ACCESS_FLUSH_SECONDS, _flush_access)
        except RuntimeError:  # no loop: write it now
            _flush_access()


def _flush_access() -> None:
    _access["flush_pending"] = False
    with contextlib.suppress(OSError, ValueError):  # stdout closed (a test's capture ended)
        sys.stdout.flush()
