"""Header policy at the edge: what crosses to the upstream and back, and what never does.

Hop-by-hop headers stay on their hop (RFC 9110 section 7.6.1); identity headers a
client could forge never reach a service; the upstream learns who asked through
``X-Forwarded-*`` and the request id.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict

from services.kit.request_id import REQUEST_ID_HEADER

# RFC 9110 section 7.6.1, plus the Proxy-* family and whatever Connection names.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "te", "trailer", "transfer-encoding", "upgrade"})
# Set by the gateway for the upstream (Host by the client session from the upstream URL);
# Expect: the gateway answers 100-continue itself.
_REPLACED_ON_REQUEST = frozenset({"host", "expect", "x-forwarded-proto", "x-forwarded-host", REQUEST_ID_HEADER.lower()})
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
