"""Assembles the gateway: the only place its parts are wired together."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from gateway.access_log import AccessLog
from gateway.balancer import Instance, Upstream
from gateway.browser import Browser
from gateway.buckets import Buckets, MemoryBuckets, RedisBuckets
from gateway.config import GatewaySettings
from gateway.edge_auth import EdgeAuth
from gateway.health import Health
from gateway.health_checks import HealthChecks
from gateway.metrics import GatewayMetrics
from gateway.middleware import add_request_id, request_middleware
from gateway.openapi import MergedOpenAPI
from gateway.pools import UpstreamPools
from gateway.proxy import Proxy
from gateway.ratelimit import RateLimiter, add_rate_limit_headers
from gateway.routes import build_routes
from gateway.static import SinglePageApp
from gateway.streams import Streams
from services.kit.docs import DocsOAuth
from services.kit.logging import get_logger

log = get_logger("gateway")

HEALTH = web.AppKey("health", Health)
METRICS = web.AppKey("metrics", GatewayMetrics)


def create_app(settings: GatewaySettings) -> web.Application:
    metrics = GatewayMetrics()
    health = Health()
    spa = SinglePageApp(settings.web_dir, settings.ping_region_list())
    routes = build_routes(settings)
    upstreams = list({id(route.upstream): route.upstream for route in routes}.values())
    _watch_breakers(upstreams, metrics)
    pools = UpstreamPools(settings, [upstream.name for upstream in upstreams])
    proxy = Proxy(settings, metrics, pools)
    streams = Streams(settings, metrics)
    docs_oauth = DocsOAuth(settings.docs_client_id, settings.docs_scopes)
    openapi = MergedOpenAPI(upstreams, pools.control, settings.openapi_cache_seconds, docs_oauth)
    browser = Browser(settings)
    edge_auth = EdgeAuth(settings, pools.control)
    buckets: Buckets = (
        RedisBuckets(settings.redis_url, settings.redis_timeout_seconds) if settings.redis_url else MemoryBuckets()
    )
    limiter = RateLimiter(settings, buckets)

    def on_limited(budget: str) -> None:
        metrics.rejected.labels(reason=f"rate_limit_{budget}").inc()

    def on_auth_rejected(status: int) -> None:
        metrics.rejected.labels(reason="unauthenticated" if status == 401 else "forbidden").inc()

    # Outermost first. request_middleware sees every answer (request id, problem+json,
    # metrics, access log); preflights are answered before any budget or token is asked
    # for; the address budget (and in-flight slot) comes before the token check so a flood
    # of bad tokens is throttled too; the subject budget needs the verified subject. The
    # proxy reads the body, then takes its route's and upstream's bulkhead slots.
    app = web.Application(
        middlewares=[
            request_middleware(metrics, AccessLog(settings.service_name, settings.log_level)),
            browser.cors(),
            limiter.by_address(on_limited),
            edge_auth.middleware(on_auth_rejected),
            limiter.by_subject(on_limited),
        ],
        client_max_size=settings.max_body_bytes,
    )
    app[HEALTH] = health
    app[METRICS] = metrics
    app.cleanup_ctx.append(pools.open)
    app.cleanup_ctx.append(edge_auth.warm_up)
    app.cleanup_ctx.append(HealthChecks(settings, upstreams, pools.control, metrics).run_in_background)
    app.cleanup_ctx.append(_closing(buckets))
    app.cleanup_ctx.append(streams.open)
    app.on_shutdown.append(streams.drain)  # before aiohttp waits for the handlers in flight

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        # One signal handler (one coroutine per response) for the three header sets.
        add_request_id(request, response)
        add_rate_limit_headers(request, response)
        browser.add_headers(request, response)

    app.on_response_prepare.append(add_headers)

    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/openapi.json", openapi.handle)
    app.router.add_get("/docs", openapi.docs)
    app.router.add_get("/docs/oauth2-redirect", openapi.docs_oauth2_redirect)
    app.router.add_get("/docs/static/{name}", openapi.docs_static)
    app.router.add_get("/", spa.redirect_to_app)
    app.router.add_get("/app", spa.redirect_to_app)
    app.router.add_get("/app/config.json", spa.config)
    app.router.add_get("/app/{tail:.*}", spa.handle)
    for route in routes:
        handler = streams.handler_for(route) if route.spec.stream else proxy.handler_for(route)
        for path in route.paths:
            app.router.add_route("GET" if route.spec.stream else "*", path, handler)
    return app


def create_metrics_app(app: web.Application) -> web.Application:
    """``GET /metrics`` of ``app``, for the private metrics listener (``METRICS_HOST``:``METRICS_PORT``)."""
    private = web.Application()
    private.router.add_get("/metrics", app[METRICS].handle)
    return private


def _watch_breakers(upstreams: list[Upstream], metrics: GatewayMetrics) -> None:
    """Breaker state changes go to the metrics and the log."""
    for upstream in upstreams:

        def changed(instance: Instance, route: str = upstream.name) -> None:
            metrics.breaker_state.labels(route=route, upstream=instance.url).set(int(instance.state))
            log.warning("breaker " + instance.state.name.lower(), route=route, upstream=instance.url)

        for instance in upstream.instances:
            instance.on_state_change = changed
            metrics.breaker_state.labels(route=upstream.name, upstream=instance.url).set(0)


def _closing(buckets: Buckets) -> Callable[[web.Application], AsyncIterator[None]]:
    async def close(app: web.Application) -> AsyncIterator[None]:
        yield
        await buckets.close()

    return close
