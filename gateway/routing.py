"""The routing table: which path prefix goes to which upstream service.

Prefixes match whole path segments (``/todos`` matches ``/todos`` and ``/todos/1``,
never ``/todosx``) and the longest prefix wins. The app registers each route's
``paths`` with the aiohttp router, so everything else is the router's 404 or 405.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway.balancer import Upstream
from gateway.config import GatewaySettings

# Path prefix → upstream name. The public contract in shared/ARCHITECTURE.md.
PREFIXES: tuple[tuple[str, str], ...] = (
    ("/.well-known", "auth"),
    ("/auth", "auth"),
    ("/todos", "todos"),
    ("/ping", "ping"),
    ("/reports", "reports"),
)


@dataclass(frozen=True)
class Route:
    """A path prefix, the upstream it goes to and the time an exchange with it may take."""

    prefix: str
    upstream: Upstream
    timeout_seconds: float
    connect_timeout_seconds: float

    @property
    def name(self) -> str:
        return self.upstream.name

    @property
    def paths(self) -> tuple[str, str]:
        """The prefix itself and everything below it, as aiohttp route patterns.

        Matching whole segments is what keeps ``/todosx`` away from the todos service.
        """
        return self.prefix, self.prefix + "/{tail:.*}"


def build_routes(settings: GatewaySettings) -> list[Route]:
    """The routing table from settings, longest prefix first (the longest match wins)."""
    upstreams = {
        name: Upstream.of(
            name,
            settings.upstream_urls(name),
            failures_to_open=settings.breaker_failures,
            open_seconds=settings.breaker_open_seconds,
        )
        for name in dict(PREFIXES).values()
    }
    routes = [
        Route(prefix, upstreams[name], settings.route_timeout(name), settings.route_connect_timeout(name))
        for prefix, name in PREFIXES
    ]
    return sorted(routes, key=lambda route: len(route.prefix), reverse=True)
