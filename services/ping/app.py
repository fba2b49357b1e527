from __future__ import annotations

from quart import Quart

from services.kit.app import create_service_app
from services.kit.config import ServiceSettings
from services.ping.api import bp


def create_app(settings: ServiceSettings) -> Quart:
    return create_service_app(
        settings,
        blueprints=[bp],
        title="Quartet ping",
        description="Echo and latency diagnostics. Public: no token needed.",
    )
