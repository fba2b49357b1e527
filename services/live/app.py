from __future__ import annotations

from quart import Quart

from services.kit import events
from services.kit.app import create_service_app, kit_of
from services.kit.context import ServiceKit
from services.kit.security import BEARER_SECURITY_SCHEME, install_auth
from services.kit.security.verifier import JwksFetcher
from services.live.api import bp
from services.live.config import LiveSettings
from services.live.events import handlers
from services.live.feeds import Feeds
from services.live.hub import Hub
from services.live.state import LiveState


def create_app(settings: LiveSettings, *, fetch_jwks: JwksFetcher | None = None) -> Quart:
    """The app; ``fetch_jwks`` replaces the issuer's JWKS fetch (only in-process tests pass one)."""
    feeds = Feeds(settings)
    app = create_service_app(
        settings,
        title="Quartet live",
        description="The caller's own events as Server-Sent Events, resumable within a window.",
        blueprints=[bp],
        security_schemes=BEARER_SECURITY_SCHEME,
        state=None,
    )
    kit = kit_of(app)
    hub = Hub(feeds, kit.registry, lambda: kit.draining)
    kit.state = LiveState(settings, feeds, hub)
    install_auth(app, fetch_jwks=fetch_jwks)
    events.install(app, direct_handlers=handlers(feeds))
    kit.readiness_checks["redis"] = feeds.ping
    kit.run_in_background("live-reader", hub.read_forever)
    kit.run_in_background("live-clock", hub.tick_forever)

    async def stop(kit: ServiceKit) -> None:
        await hub.release_all()
        await feeds.close()

    kit.on_stop.insert(0, stop)  # stop hooks run newest first: this one last, after the bus
    return app
