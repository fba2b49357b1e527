"""The routing table: which paths go to which upstream, how long they may take, how many may be in flight.

One row per route (:data:`TABLE`). Prefixes match whole path segments (``/todos``
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
docs/gateway.md has the table with every value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.balancer import Upstream
from gateway.bulkheads import Bulkhead

if TYPE_CHECKING:
    from gateway.config import GatewaySettings


@dataclass(frozen=True)
class RouteSpec:
    """One row of the table. ``None`` takes the interactive default from settings."""

    name: str  # the metrics label and the key of the per-route settings overrides
    upstream: str
    prefix: str
    pattern: str | None = None  # a narrower aiohttp pattern under the prefix
    timeout_seconds: float | None = None  # the whole exchange; default UPSTREAM_TIMEOUT_SECONDS
    max_in_flight: int | None = None  # besides the upstream's own cap
    # The service replays a POST's first answer for a repeated Idempotency-Key, so such a
    # POST whose instance dropped the connection may be sent again (see gateway.retry).
    honours_idempotency_key: bool = False


# The public contract in shared/ARCHITECTURE.md. Slow routes say so here.
TABLE: tuple[RouteSpec, ...] = (
    RouteSpec("auth", "auth", "/.well-known"),
    RouteSpec("auth", "auth", "/auth"),
    RouteSpec("todos", "todos", "/todos", honours_idempotency_key=True),
    RouteSpec("ping", "ping", "/ping"),
    # Up to ping's MAX_DELAY_MS (10 s) by design; its handler deadline is that plus 1 s.
    # At most 32 in flight: a flood of delays cannot take all of ping's connections.
    RouteSpec("ping-delay", "ping", "/ping/delay", timeout_seconds=12.0, max_in_flight=32),
    RouteSpec("reports", "reports", "/reports"),
    # A rendered file (handler deadline 25 s) and its transfer to a possibly slow client.
    RouteSpec("reports-file", "reports", "/reports", pattern="/reports/{report_id}/file", timeout_seconds=30.0),
)
ROUTE_NAMES = frozenset(spec.name for spec in TABLE)
# Path prefix → upstream name, for the parts of the gateway that only need to know what is routed.
PREFIXES: tuple[tuple[str, str], ...] = tuple(
    dict.fromkeys((spec.prefix, spec.upstream) for spec in TABLE if spec.pattern is None)
)


@dataclass(frozen=True)
class Route:
    """A row of the table, built: its upstream's instances, its timeouts and its own bulkhead."""

    spec: RouteSpec
    upstream: Upstream
    timeout_seconds: float
    connect_timeout_seconds: float
    bulkhead: Bulkhead | None  # the route's own cap on requests in flight, if it has one

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def prefix(self) -> str:
        return self.spec.prefix

    @property
    def honours_idempotency_key(self) -> bool:
        return self.spec.honours_idempotency_key

    @property
    def paths(self) -> tuple[str, ...]:
        """The aiohttp route patterns: the pattern, or the prefix itself and everything below it.

        Matching whole segments is what keeps ``/todosx`` away from the todos service.
        """
        if self.spec.pattern is not None:
            return (self.spec.pattern,)
        return self.spec.prefix, self.spec.prefix + "/{tail:.*}"


def build_routes(settings: GatewaySettings) -> list[Route]:
    """The routing table from settings, most specific first (the order the router tries them)."""
    upstreams = {
        name: Upstream.of(
            name,
            settings.upstream_urls(name),
            failures_to_open=settings.breaker_failures,
            open_seconds=settings.breaker_open_seconds,
        )
        for name in dict.fromkeys(spec.upstream for spec in TABLE)
    }
    bulkheads: dict[str, Bulkhead] = {}  # rows sharing a name share one cap
    routes = []
    for spec in TABLE:
        cap = settings.upstream_route_max_in_flight.get(spec.name, spec.max_in_flight)
        if cap is not None and spec.name not in bulkheads:
            bulkheads[spec.name] = Bulkhead(f"the {spec.name} route", cap)
        timeout = settings.upstream_route_timeouts.get(spec.name, spec.timeout_seconds)
        routes.append(
            Route(
                spec,
                upstreams[spec.upstream],
                timeout if timeout is not None else settings.upstream_timeout_seconds,
                settings.route_connect_timeout(spec.name),
                bulkheads.get(spec.name),
            )
        )
    return sorted(routes, key=lambda route: (route.spec.pattern is None, -len(route.prefix)))
