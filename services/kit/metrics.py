"""Prometheus metrics of one app, on the app's own registry (no global default registry).

:func:`new_registry` is where every process's registry comes from: it carries the
process (CPU, memory, file descriptors), platform (Python version) and GC collectors
that the global default registry would have had. :func:`serve_metrics` serves a
registry on a port of its own, for a process without an HTTP app (the report worker).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True)
class HttpMetrics:
    """Requests by route template and status, a latency histogram, and in-flight requests."""

    requests: Counter
    latency: Histogram
    in_flight: Gauge
    # Children already bound to their labels: labels() validates, converts and locks at
    # every call; a request looks its pair up here instead (a route has a handful).
    _bound: dict[tuple[str, str, int], tuple[Any, Any]] = field(default_factory=dict, compare=False, repr=False)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (``route`` is the route template)."""
        key = (method, route, status)
        pair = self._bound.get(key)
        if pair is None:
            pair = self._bound[key] = (
                self.requests.labels(method, route, str(status)),
                self.latency.labels(method, route),
            )
        pair[0].inc()
        pair[1].observe(seconds)

    @classmethod
    def register(cls, registry: CollectorRegistry) -> HttpMetrics:
        return cls(
            requests=Counter(
                "http_requests_total",
                "HTTP requests answered, by method, route template and status.",
                ["method", "route", "status"],
                registry=registry,
            ),
            latency=Histogram(
                "http_request_duration_seconds",
                "Time to answer an HTTP request, by method and route template.",
                ["method", "route"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            in_flight=Gauge("http_requests_in_flight", "HTTP requests being handled now.", registry=registry),
        )


def new_registry() -> CollectorRegistry:
    """A fresh registry with the process, platform and GC collectors (``process_*``, ``python_*``)."""
    registry = CollectorRegistry(auto_describe=True)
    # The default collectors are stateless readers (of /proc, the interpreter): shared, not copied.
    for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
        registry.register(collector)
    return registry


async def serve_metrics(registry: CollectorRegistry, host: str, port: int) -> web.AppRunner:
    """Serve ``GET /metrics`` (and ``/healthz``) of ``registry`` on ``host:port``; returns the runner to clean up."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
