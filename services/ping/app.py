from __future__ import annotations

from quart import Quart

from services.kit.app import create_service_app
from services.kit.config import ServiceSettings
from services.ping.api import blueprint
from services.ping.config import PingSettings


def create_app(settings: ServiceSettings) -> Quart:
    assert isinstance(settings, PingSettings)
    return create_service_app(
        settings,
        blueprints=[blueprint(settings)],
        title="Quartet ping",
        description="Echo and latency diagnostics. Public: no token needed.",
    )
