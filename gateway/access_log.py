"""The gateway's access log: one JSON line per request, as structlog would write it, for less.

Every answer gets a line (``component`` ``gateway.access``, ``event`` ``request``) with
the same keys, in the same order, as the kit's structlog configuration renders
(:mod:`services.kit.logging`): the request's fields, then ``event``, ``service``,
``trace_id`` and ``span_id`` inside a trace, ``level``, ``timestamp``. It skips the
processor chain (context merge, stamper, renderer, a locked ``print`` with a flush):
written once per request, that chain cost the gateway about a tenth of its CPU.

Lines reach the file in batches, at most :data:`FLUSH_SECONDS` after they were
written, instead of one ``write(2)`` each; a server error (5xx) or a request slower
than :data:`SLOW_REQUEST_MS` is flushed at once, with whatever waits before it. Other
log lines go through structlog to the same ``sys.stdout``, so the order is kept. Below
``LOG_LEVEL=INFO`` (``WARNING`` and up) no access line is written, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

from services.kit import tracing

FLUSH_SECONDS = 0.05
SLOW_REQUEST_MS = 1000.0

_encode = json.JSONEncoder().encode  # structlog's JSONRenderer: json.dumps with the defaults


class AccessLog:
    """Writes access lines for ``service`` (the kit's ``service`` field) when ``level`` admits INFO."""

    def __init__(self, service: str, level: str) -> None:
        self.service = service
        numeric = logging.getLevelName(level.upper())
        self.enabled = not isinstance(numeric, int) or numeric <= logging.INFO
        self._flush_pending = False

    def write(self, fields: dict[str, Any], *, status: int, duration_ms: float) -> None:
        """One line of ``fields`` (the request's own, ``component`` first); flushed now when it matters."""
        if not self.enabled:
            return
        fields["event"] = "request"
        fields["service"] = self.service
        if tracing.tracing_enabled():  # without the SDK no span is ever current
            context = trace.get_current_span().get_span_context()
            if context.is_valid:  # the same hex ids as services.kit.logging's
                fields["trace_id"] = f"{context.trace_id:032x}"
                fields["span_id"] = f"{context.span_id:016x}"
        fields["level"] = "info"
        fields["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        out = sys.stdout
        out.write(_encode(fields) + "\n")
        if status >= 500 or duration_ms >= SLOW_REQUEST_MS:
            self.flush()
        elif not self._flush_pending:
            self._flush_pending = True
            try:
                asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no running loop: nothing to batch with
                self.flush()

    def flush(self) -> None:
        self._flush_pending = False
        with contextlib.suppress(OSError, ValueError):  # stdout closed (a test's capture ended)
            sys.stdout.flush()
