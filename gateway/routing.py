"""The routing table: which paths go to which upstream, what they ask at the edge, how long they may take.

One row per route (:data:`TABLE`): its upstream, its prefix or pattern, the token it
needs at the edge (:class:`Requirement`, checked by :mod:`gateway.edge_auth`), its rate
budget (:class:`RateBudget`, applied by :mod:`gateway.ratelimit`), its timeout and its
in-flight cap. Prefixes match whole path segments (``/todos``
matches ``/todos`` and ``/todos/1``, never ``/todosx``) and the most specific row
wins: a row with a ``pattern`` (``/reports/{id}/file``) before the prefixes, and a
longer prefix (``/ping/delay``) before a shorter one (``/ping``). The app registers
each route's ``paths`` with the aiohttp router, so everything else is the router's
404 or 405.

Deadlines agree with the services': a route's gateway timeout is a little above the
handler deadline of the service behind it (the kit's ``REQUEST_TIMEOUT_SECONDS``,
5 s, for interactive routes; slow handlers declare their own with
``services.kit.app.handler_deadline``), so the service gives up first and answers its
own 504 problem, and the gateway's 504 means the instance did not answer at all.
docs/gateway.md has the table with every value; :mod:`gateway.routes` builds it from the settings.

Edge auth and rate limits look a path's row up with :func:`route_for`, which reads
the path with empty segments dropped (``//auth//register/`` is ``/auth/register``),
so another spelling of a path never gets a looser rule than the path itself.
"""

from __future__ import annotations

import enum
import functools
from dataclasses import dataclass

from services.kit.security.claims import Claims


@dataclass(frozen=True)
class Requirement:
    """What a protected route asks of a token: any valid one, or one with a scope of ``family``."""

    family: str | None = None

    def allows(self, claims: Claims) -> bool:
        return self.family is None or _has_scope_of(self.family, claims.scopes)


# A token's scopes are one of a few sets (a frozenset hashes once): the answer is remembered.
@functools.lru_cache(maxsize=1024)
def _has_scope_of(family: str, scopes: frozenset[str]) -> bool:
    return any(scope.startswith(family) for scope in scopes)


ANY_TOKEN = Requirement()


class RateBudget(enum.Enum):
    """The budgets a route's requests take from, besides the subject budget of a verified token."""

    DEFAULT = "default"  # the client address's
    LOGIN = "login"  # a POST also takes from the stricter login budget
    EXEMPT = "exempt"  # none at all


@dataclass(frozen=True)
class RouteSpec:
    """One row of the table. ``None`` takes the interactive default from settings."""

    name: str  # the metrics label and the key of the per-route settings overrides
    upstream: str
    prefix: str
    pattern: str | None = None  # a narrower aiohttp pattern under the prefix
    # The token the edge asks for (None: public at the edge). The exact scope a handler
    # needs stays with the service, which verifies the token again.
    token: Requirement | None = None
    budget: RateBudget = RateBudget.DEFAULT
    timeout_seconds: float | None = None  # the whole exchange; default UPSTREAM_TIMEOUT_SECONDS
    max_in_flight: int | None = None  # besides the upstream's own cap
    # The service replays a POST's first answer for a repeated Idempotency-Key, so such a
    # POST whose instance dropped the connection may be sent again (see gateway.retry).
    honours_idempotency_key: bool = False
    # A long-lived stream (Server-Sent Events): served by gateway.streams, not the proxy.
    stream: bool = False


# POSTs here check credentials (token, authorize, introspect, revoke) or cost a 64 MiB
# argon2 hash (register): they take from the login budget too.
_LOGIN_PATHS = ("/auth/token", "/auth/authorize", "/auth/register", "/auth/revoke", "/auth/introspect")

# The public contract in shared/ARCHITECTURE.md. Slow routes say so here.
TABLE: tuple[RouteSpec, ...] = (
    RouteSpec("auth", "auth", "/.well-known"),
    RouteSpec("auth", "auth", "/auth"),
    RouteSpec("auth", "auth", "/auth/me", token=ANY_TOKEN),
    *(RouteSpec("auth", "auth", "/auth", pattern=path, budget=RateBudget.LOGIN) for path in _LOGIN_PATHS),
    RouteSpec("todos", "todos", "/todos", token=Requirement("todos:"), honours_idempotency_key=True),
    RouteSpec("ping", "ping", "/ping"),
    # Up to ping's MAX_DELAY_MS (10 s) by design; its handler deadline is that plus 1 s.
    # At most 32 in flight: a flood of delays cannot take all of ping's connections.
    RouteSpec("ping-delay", "ping", "/ping/delay", timeout_seconds=12.0, max_in_flight=32),
    RouteSpec("reports", "reports", "/reports", token=Requirement("reports:")),
    # A rendered file (handler deadline 25 s) and its transfer to a possibly slow client.
    RouteSpec(
        "reports-file",
        "reports",
        "/reports",
        pattern="/reports/{report_id}/file",
        token=Requirement("reports:"),
        timeout_seconds=30.0,
    ),
    # Server-Sent Events (docs/live.md): an idle timeout of its own instead of a deadline.
    RouteSpec("live", "live", "/live", token=ANY_TOKEN, stream=True),
)
# The gateway's own endpoints that are never throttled: probes (gateway.app serves them).
UNLIMITED_PATHS = frozenset({"/healthz", "/readyz"})
ROUTE_NAMES = frozenset(spec.name for spec in TABLE)
# Path prefix → upstream name, for the parts of the gateway that only need to know what is routed.
PREFIXES: tuple[tuple[str, str], ...] = tuple(
    dict.fromkeys((spec.prefix, spec.upstream) for spec in TABLE if spec.pattern is None)
)


def specificity(spec: RouteSpec) -> tuple[bool, int]:
    """Sort key, most specific first: pattern rows, then longer prefixes."""
    return spec.pattern is None, -len(spec.prefix)


def _segments(path: str) -> tuple[str, ...]:
    return tuple(segment for segment in path.split("/") if segment)


# Each row with the segments it matches: a pattern's exactly ("{...}" is any one segment), a prefix's as a start.
_MATCHERS = [(spec, _segments(spec.pattern or spec.prefix)) for spec in sorted(TABLE, key=specificity)]


# Paths repeat (``/todos``, ``/ping``), and edge auth and the rate limits both ask for each
# request: the answer is a pure function of the path, remembered for the most recent paths.
@functools.lru_cache(maxsize=4096)
def route_for(path: str) -> RouteSpec | None:
    """The row deciding ``path`` (empty segments dropped), most specific first; None when nothing is routed there."""
    segments = _segments(path)
    for spec, wanted in _MATCHERS:
        if spec.pattern is None:
            if segments[: len(wanted)] == wanted:
                return spec
        elif len(segments) == len(wanted) and all(
            want == got or want.startswith("{") for want, got in zip(wanted, segments, strict=True)
        ):
            return spec
    return None


def requirement_for(path: str) -> Requirement | None:
    """The token ``path`` needs at the edge; None for a public path (a service may still ask for one)."""
    spec = route_for(path)
    return spec.token if spec is not None else None


def budget_for(path: str) -> RateBudget:
    """The rate budget of ``path``: its row's, none for the probes, the default elsewhere (/app, /docs)."""
    if path in UNLIMITED_PATHS:
        return RateBudget.EXEMPT
    spec = route_for(path)
    return spec.budget if spec is not None else RateBudget.DEFAULT
