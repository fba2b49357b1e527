from __future__ import annotations

from pydantic import Field

from services.kit.config import ServiceSettings


class PingSettings(ServiceSettings):
    service_name: str = "ping"
    port: int = Field(8003, ge=0, le=65535)
    # Upper bound of /ping/delay (documented in its schema), so a diagnostic cannot hold a connection for long.
    max_delay_ms: int = Field(10_000, ge=0, le=60_000)
