from __future__ import annotations

from quart import Quart

from services.kit.app import create_service_app
from services.ping.api import bp
from services.ping.config import PingSettings
from services.ping.state import PingState


def create_app(settings: PingSettings) -> Quart:
    return create_service_app(
        settings,
        state=PingState(settings),
        blueprints=[bp],
        title="Quartet ping",
        description="Echo and latency diagnostics. Public: no token needed.",
    )
