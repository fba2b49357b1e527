"""The gateway's access log: one JSON line per request, as structlog would write it, for less.

Every answer gets a line (``component`` ``gateway.access``, ``event`` ``request``) with
the same keys as the kit's structlog configuration renders (:mod:`services.kit.logging`):
the request's fields, then ``event``, ``service``, ``trace_id`` and ``span_id`` inside a
trace, ``level``, ``timestamp``. It skips the processor chain (context merge, stamper,
renderer, a locked ``print`` with a flush): written once per request, that chain cost the
gateway about a tenth of its CPU. The writing and the batched flushing are the kit's
(:func:`services.kit.logging.write_access_line`), shared with the services' access lines;
a server error (5xx) or a request slower than ``SLOW_REQUEST_MS`` is flushed at once. Below
``LOG_LEVEL=INFO`` (``WARNING`` and up) no access line is written, as before.
"""

from __future__ import annotations

import logging
from typing import Any

from services.kit.logging import write_access_line


class AccessLog:
    """Writes access lines for ``service`` (the kit's ``service`` field) when ``level`` admits INFO."""

    def __init__(self, service: str, level: str) -> None:
        self.service = service
        numeric = logging.getLevelName(level.upper())
        self.enabled = not isinstance(numeric, int) or numeric <= logging.INFO

    def write(self, fields: dict[str, Any], *, status: int, duration_ms: float) -> None:
        """One line of ``fields`` (the request's own, ``component`` first); flushed now when it matters."""
        if not self.enabled:
            return
        fields["event"] = "request"
        fields["service"] = self.service
        write_access_line(fields, status=status, duration_ms=duration_ms)
