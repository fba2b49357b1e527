"""Assembles the gateway: the only place its parts are wired together."""

from __future__ import annotations

from aiohttp import web

from gateway.config import GatewaySettings
from gateway.health import Health
from gateway.metrics import GatewayMetrics
from gateway.middleware import add_request_id, request_middleware
from gateway.proxy import Proxy
from gateway.routing import build_routes
from gateway.static import SinglePageApp

HEALTH = web.AppKey("health", Health)


def create_app(settings: GatewaySettings) -> web.Application:
    metrics = GatewayMetrics()
    health = Health()
    proxy = Proxy(settings)
    spa = SinglePageApp(settings.web_dir)

    # Edge concerns arriving with issue 8 (CORS, rate limits, token checks) go after
    # request_middleware, so their answers are logged, counted and carry the request id.
    app = web.Application(middlewares=[request_middleware(metrics)], client_max_size=settings.max_body_bytes)
    app[HEALTH] = health
    app.cleanup_ctx.append(proxy.client_session)
    app.on_response_prepare.append(add_request_id)

    app.router.add_get("/healthz", health.healthz)
    app.router.add_get("/readyz", health.readyz)
    app.router.add_get("/metrics", metrics.handle)
    app.router.add_get("/", spa.redirect_to_app)
    app.router.add_get("/app", spa.redirect_to_app)
    app.router.add_get("/app/{tail:.*}", spa.handle)
    for route in build_routes(settings):
        handler = proxy.handler_for(route)
        for path in route.paths:
            app.router.add_route("*", path, handler)
    return app
