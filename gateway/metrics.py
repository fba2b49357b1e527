"""Prometheus metrics of one gateway app, in its own registry (never the global default).

The hot path never calls ``labels()``: a label lookup builds and checks a tuple and takes
the metric's lock on every request. The children each request touches are bound once per
label combination and kept (:meth:`GatewayMetrics.observe`, :meth:`GatewayMetrics.upstream_latency_of`);
the combinations are few (routes by instances by statuses seen). Requests in flight are a
plain counter the gauge reads when scraped.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from services.kit.metrics import new_registry

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class GatewayMetrics:
    """Requests by route, upstream instance and status; latency by route; requests in flight.

    ``route`` is the upstream name for proxied requests (``todos``) and the handler's
    name for the gateway's own (``app``, ``healthz``); ``unmatched`` for a 404.
    ``upstream`` is the instance's base URL, empty when no upstream was involved.
    """

    def __init__(self) -> None:
        self.registry = new_registry()
        self.requests = Counter(
            "gateway_requests",
            "Requests answered by the gateway.",
            ["route", "upstream", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "gateway_request_duration_seconds",
            "Time from request received to response finished.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = 0  # requests being handled right now, read by the gauge below at scrape time
        Gauge(
            "gateway_requests_in_flight",
            "Requests being handled right now.",
            registry=self.registry,
        ).set_function(lambda: self.in_flight)
        self.upstream_latency = Histogram(
            "gateway_upstream_response_seconds",
            "Time from sending a request to an upstream instance to its response headers.",
            ["route", "upstream"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_failures = Counter(
            "gateway_upstream_failures",
            "Exchanges with an upstream instance that failed, by reason (connect, timeout, broken).",
            ["route", "upstream", "reason"],
            registry=self.registry,
        )
        self.retries = Counter(
            "gateway_upstream_retries",
            "Idempotent requests retried on another instance after a connection failure.",
            ["route"],
            registry=self.registry,
        )
        self.breaker_state = Gauge(
            "gateway_upstream_breaker_state",
            "Circuit breaker of an upstream instance: 0 closed, 1 half-open, 2 open.",
            ["route", "upstream"],
            registry=self.registry,
        )
        self.healthy = Gauge(
            "gateway_upstream_healthy",
            "Whether the active health check of an upstream instance passes (1) or not (0).",
            ["route", "upstream"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "gateway_edge_rejections",
            "Requests answered at the edge without reaching a service, by reason.",
            ["reason"],
            registry=self.registry,
        )

        # Bound children by label values (see the module docstring).
        self._answered: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self._upstream_latency: dict[tuple[str, str], Histogram] = {}

    def observe(self, route: str, upstream: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency."""
        key = (route, upstream, status)
        children = self._answered.get(key)
        if children is None:
            children = self._answered[key] = (
                self.requests.labels(route=route, upstream=upstream, status=str(status)),
                self.latency.labels(route=route),
            )
        children[0].inc()
        children[1].observe(seconds)

    def upstream_latency_of(self, route: str, upstream: str) -> Histogram:
        """The ``gateway_upstream_response_seconds`` child of one route and instance."""
        child = self._upstream_latency.get((route, upstream))
        if child is None:
            child = self._upstream_latency[(route, upstream)] = self.upstream_latency.labels(
                route=route, upstream=upstream
            )
        return child

    async def handle(self, request: web.Request) -> web.Response:
        """``GET /metrics``: the registry in Prometheus text format."""
        # Text format 0.0.4: what every Prometheus server scrapes without negotiation.
        return web.Response(
            body=generate_latest(self.registry),
            headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4, "Cache-Control": "no-store"},
        )
