"""One request-id rule for the kit's services and the gateway.

A client's ``X-Request-ID`` is kept when it is 1..128 characters of
``[A-Za-z0-9._-]`` (the whole value); anything else — empty, longer, spaces,
``;``, ``:``, control characters — is replaced by a fresh ``uuid4().hex``. The id
is returned on every response, bound into every log line and carried into events
as ``correlation_id``; the gateway forwards the id it settled on to the service.
"""

from __future__ import annotations

import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")


def pick_request_id(given: str | None) -> str:
    """``given`` when it is a sane request id, else a fresh one (32 hex digits)."""
    if given and SANE_REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex
