"""The gateway's settings, read once from the environment.

Upstreams are lists of base URLs so a service can run as several instances:
``TODOS_URLS=http://a:8002,http://b:8002``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from services.kit.config import ServiceSettings

REPO_ROOT = Path(__file__).resolve().parent.parent

# The services the gateway routes to; the routing table in gateway.routing names them.
UPSTREAM_NAMES = ("auth", "todos", "ping", "reports")

# A comma-separated env value, parsed by the validators below instead of as JSON.
CommaList = Annotated[tuple[str, ...], NoDecode]


class GatewaySettings(ServiceSettings):
    """Everything the gateway reads from its environment. Defaults suit a developer machine."""

    service_name: str = "gateway"
    port: int = Field(8080, ge=0, le=65535)

    auth_urls: CommaList = ("http://127.0.0.1:8001",)
    todos_urls: CommaList = ("http://127.0.0.1:8002",)
    ping_urls: CommaList = ("http://127.0.0.1:8003",)
    reports_urls: CommaList = ("http://127.0.0.1:8004",)

    # Connecting (including the wait for a free pooled connection) and the whole exchange.
    upstream_connect_timeout_seconds: float = Field(3.0, gt=0)
    upstream_timeout_seconds: float = Field(30.0, gt=0)
    # Per-route overrides of the whole-exchange timeout: ``UPSTREAM_ROUTE_TIMEOUTS=reports=120,ping=5``.
    upstream_route_timeouts: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    upstream_max_connections: int = Field(200, ge=1)
    # Idle pooled connections are closed after this long. It must stay below the services'
    # hypercorn keep-alive (keep_alive_seconds, 75 s), so the gateway always drops an idle
    # connection before the server does and never sends a request into a socket the server
    # is closing at that moment.
    upstream_keepalive_seconds: float = Field(30.0, gt=0)

    web_dir: Path = REPO_ROOT / "web"
    # Parsed now; the CORS middleware arrives with edge auth and rate limits (issue 8).
    cors_origins: CommaList = ("http://localhost:8080",)

    @field_validator("auth_urls", "todos_urls", "ping_urls", "reports_urls", mode="before")
    @classmethod
    def _upstream_urls(cls, value: Any) -> tuple[str, ...]:
        urls = _split(value)
        if not urls:
            raise ValueError("at least one upstream URL is required")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream URL must start with http:// or https://: {url!r}")
        return tuple(url.rstrip("/") for url in urls)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> tuple[str, ...]:
        return tuple(origin.rstrip("/") for origin in _split(value))

    @field_validator("upstream_route_timeouts", mode="before")
    @classmethod
    def _route_timeouts(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        timeouts: dict[str, str] = {}
        for item in _split(value):
            name, sep, seconds = item.partition("=")
            if not sep:
                raise ValueError(f"expected name=seconds, got {item!r}")
            timeouts[name.strip()] = seconds.strip()
        return timeouts

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        unknown = set(self.upstream_route_timeouts) - set(UPSTREAM_NAMES)
        if unknown:
            raise ValueError(f"unknown routes in upstream_route_timeouts: {sorted(unknown)}")
        if any(seconds <= 0 for seconds in self.upstream_route_timeouts.values()):
            raise ValueError("route timeouts must be positive")
        if self.upstream_keepalive_seconds >= self.keep_alive_seconds:
            raise ValueError("upstream_keepalive_seconds must be below the services' keep_alive_seconds")
        return self

    def upstream_urls(self, name: str) -> tuple[str, ...]:
        """The base URLs of one upstream service, by name (one of ``UPSTREAM_NAMES``)."""
        urls: tuple[str, ...] = getattr(self, f"{name}_urls")
        return urls

    def route_timeout(self, name: str) -> float:
        """The whole-exchange timeout for requests routed to ``name``."""
        return self.upstream_route_timeouts.get(name, self.upstream_timeout_seconds)


def _split(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part).strip() for part in value if str(part).strip()]
