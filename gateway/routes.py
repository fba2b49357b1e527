"""The routing table built from the settings: each row of :data:`gateway.routing.TABLE` with its
upstream's instances, its timeouts and its bulkhead.

Apart from :mod:`gateway.routing` so the table (which :mod:`gateway.config` checks route
names against) needs no settings, and the settings need no built routes.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.balancer import Upstream
from gateway.bulkheads import Bulkhead
from gateway.config import GatewaySettings
from gateway.routing import TABLE, RouteSpec, specificity


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
    return sorted(routes, key=lambda route: specificity(route.spec))
