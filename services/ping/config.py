from __future__ import annotations

from pydantic import Field

from services.kit.config import ServiceSettings


class PingSettings(ServiceSettings):
    service_name: str = "ping"
    port: int = Field(8003, ge=0, le=65535)
