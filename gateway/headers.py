"""Header policy at the edge: what crosses to the upstream and back, and what never does.

Hop-by-hop headers stay on their hop (RFC 9110 section 7.6.1); identity headers a
client could forge never reach a service; the upstream learns who asked through
``X-Forwarded-*`` and the request id.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict, MutableMultiMapping

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


# What never crosses to the upstream: replaced by the gateway, claims of identity, and
# X-Forwarded-For (rebuilt with the peer appended). Fixed at import, not per request.
_DROPPED_ON_REQUEST = _REPLACED_ON_REQUEST | IDENTITY_HEADERS | {"x-forwarded-for"}


def _copy_end_to_end(headers: Mapping[str, str], into: MutableMultiMapping[str], drop: frozenset[str]) -> None:
    """Add ``headers`` to ``into`` without hop-by-hop ones (nor any name in ``drop``, lower case); repeats kept.

    One pass, no intermediate copy: this runs twice per proxied request. The names a
    ``Connection`` header lists are hop-by-hop too (rare: then a second pass finds them).
    """
    named: set[str] | None = None
    for name, value in headers.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in drop or lower.startswith("proxy-"):
            if lower == "connection":
                named = (named or set()) | {token.strip().lower() for token in value.split(",")}
            continue
        into.add(name, value)
    if named:
        for name in named:
            into.popall(name, None)


def end_to_end_headers(headers: Mapping[str, str], *, drop: frozenset[str] = frozenset()) -> CIMultiDict[str]:
    """``headers`` without hop-by-hop ones (nor any name in ``drop``, lower case); repeats kept."""
    kept: CIMultiDict[str] = CIMultiDict()
    _copy_end_to_end(headers, kept, drop)
    return kept


def copy_answer_headers(headers: Mapping[str, str], into: MutableMultiMapping[str], *, whole_body: bool) -> None:
    """An upstream answer's end-to-end headers into the (empty) headers of the client response.

    ``whole_body``: the answer's ``Content-Length`` is left to aiohttp, which sets the
    length of the body it sends. Our services send no hop-by-hop header, so the answer is
    copied whole (one call in C) and only checked for them: a name of :data:`HOP_BY_HOP`
    or a ``Proxy-*`` one sends it the header-by-header way.
    """
    into.extend(headers)
    if any(name in into for name in HOP_BY_HOP) or "proxy-" in " ".join(into.keys()).lower():
        into.clear()
        _copy_end_to_end(headers, into, frozenset())
    if whole_body:
        into.popall("Content-Length", None)


def has_dot_segments(raw_path: str) -> bool:
    """True when a path segment is ``.`` or ``..``, percent-encoded or not (``%2e%2e%2f`` too)."""
    if "." not in raw_path and "%" not in raw_path:
        return False  # the common case, decided without decoding or splitting
    return any(segment in {".", ".."} for segment in unquote(raw_path).split("/"))


def copy_answer_pairs(pairs: list[tuple[bytes, bytes]], into: MutableMultiMapping[str], *, whole_body: bool) -> None:
    """The headers of an upstream answer as the parser gave them (raw bytes) into the client response.

    The same policy as :func:`copy_answer_headers`; names and values are decoded as aiohttp
    decodes them (UTF-8, undecodable bytes kept as surrogates, so they go out unchanged).
    """
    hop = False
    for name, value in pairs:
        text = name.decode("utf-8", "surrogateescape")
        lower = text.lower()
        if lower in HOP_BY_HOP or lower.startswith("proxy-"):
            hop = True
        into.add(text, value.decode("utf-8", "surrogateescape"))
    if hop:
        copied = list(into.items())
        into.clear()
        _copy_end_to_end(CIMultiDict(copied), into, frozenset())
    if whole_body:
        into.popall("Content-Length", None)


# Also never copied into the head this gateway writes itself: it sets the body's length.
_NOT_WRITTEN = _DROPPED_ON_REQUEST | {"content-length"}
# Methods whose request always states a body length, if only 0 (as aiohttp's client did).
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def request_head(
    request: web.Request, request_id: str, host: str, body: bytes | None, extra: Mapping[str, str] | None = None
) -> bytes:
    """The HTTP/1.1 head the upstream gets: what :func:`forwarded_headers` holds, as bytes.

    Written straight from the client's headers (aiohttp's parser has already refused CR,
    LF and NUL in them); ``Host`` is the instance's, ``Content-Length`` the buffered body's.
    ``extra`` (the trace context, when traced) replaces the client's headers of those names.
    """
    incoming = request.headers
    lines = [f"{request.method} {request.rel_url.raw_path_qs} HTTP/1.1\r\nHost: {host}\r\n"]
    named: set[str] | None = None
    for name, value in incoming.items():
        lower = name.lower()
        if lower in HOP_BY_HOP or lower in _NOT_WRITTEN or lower.startswith("proxy-"):
            if lower == "connection":
                named = (named or set()) | {token.strip().lower() for token in value.split(",")}
            continue
        if extra and lower in extra:
            continue
        lines.append(f"{name}: {value}\r\n")
    if named:
        lines = [lines[0], *(line for line in lines[1:] if line.split(":", 1)[0].lower() not in named)]
    client = request.remote or "unknown"
    if "X-Forwarded-For" in incoming:
        prior = ", ".join(incoming.getall("X-Forwarded-For"))
        lines.append(f"X-Forwarded-For: {prior}, {client}\r\n" if prior else f"X-Forwarded-For: {client}\r\n")
    else:
        lines.append(f"X-Forwarded-For: {client}\r\n")
    lines.append(f"X-Forwarded-Proto: {request.scheme}\r\nX-Forwarded-Host: {request.host}\r\n")
    lines.append(f"{REQUEST_ID_HEADER}: {request_id}\r\n")
    if extra:
        lines.extend(f"{name}: {value}\r\n" for name, value in extra.items())
    if body:
        lines.append(f"Content-Length: {len(body)}\r\n")
    elif request.method in _BODY_METHODS:
        lines.append("Content-Length: 0\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("utf-8", "surrogateescape")


def forwarded_headers(request: web.Request, request_id: str) -> CIMultiDict[str]:
    """The headers the upstream gets: the client's end-to-end ones plus X-Forwarded-* and X-Request-ID."""
    incoming = request.headers
    headers = end_to_end_headers(incoming, drop=_DROPPED_ON_REQUEST)
    client = request.remote or "unknown"
    if "X-Forwarded-For" in incoming:
        prior = ", ".join(incoming.getall("X-Forwarded-For"))
        headers["X-Forwarded-For"] = f"{prior}, {client}" if prior else client
    else:
        headers["X-Forwarded-For"] = client
    headers["X-Forwarded-Proto"] = request.scheme
    headers["X-Forwarded-Host"] = request.host
    headers[REQUEST_ID_HEADER] = request_id
    return headers
