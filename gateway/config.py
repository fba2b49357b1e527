"""The gateway's settings, read once from the environment.

Upstreams are lists of base URLs so a service can run as several instances:
``TODOS_URLS=http://a:8002,http://b:8002``.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode

from gateway.routing import ROUTE_NAMES
from services.kit.config import CommaList, ServiceSettings, split_commas

REPO_ROOT = Path(__file__).resolve().parent.parent

# The services the gateway routes to; the routing table in gateway.routing names them.
UPSTREAM_NAMES = ("auth", "todos", "ping", "reports", "live")


class GatewaySettings(ServiceSettings):
    """Everything the gateway reads from its environment. Defaults suit a developer machine."""

    service_name: str = "gateway"
    port: int = Field(8080, ge=0, le=65535)
    # /metrics has a listener of its own, never the public one: it names internal upstreams.
    # Loopback by default; a cluster sets METRICS_HOST=0.0.0.0 so Prometheus can scrape the pod.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(9080, ge=0, le=65535)

    auth_urls: CommaList = ("http://127.0.0.1:8001",)
    todos_urls: CommaList = ("http://127.0.0.1:8002",)
    ping_urls: CommaList = ("http://127.0.0.1:8003",)
    reports_urls: CommaList = ("http://127.0.0.1:8004",)
    live_urls: CommaList = ("http://127.0.0.1:8005",)

    # Streams (gateway.streams, docs/live.md): ended when the upstream sends nothing for this
    # long (3 of live's 15 s heartbeats) or the client reads nothing; at most this many open
    # per client address (429 beyond) and in all (503 beyond).
    gateway_stream_idle_seconds: float = Field(45.0, gt=0, le=3600)
    gateway_max_streams_per_client: int = Field(20, ge=1)
    gateway_max_streams: int = Field(10_000, ge=1)

    # Connecting to an instance (TCP only: a request that got past its upstream's bulkhead
    # never waits for a pooled connection) and the whole exchange of an interactive route,
    # a little above the services' handler deadline (REQUEST_TIMEOUT_SECONDS, 5 s). Slow
    # routes have their own in gateway.routing.TABLE. Per-route overrides, by route name:
    # ``UPSTREAM_ROUTE_TIMEOUTS=reports-file=120,ping=2``, ``UPSTREAM_ROUTE_CONNECT_TIMEOUTS=ping=0.5``.
    upstream_connect_timeout_seconds: float = Field(3.0, gt=0)
    upstream_timeout_seconds: float = Field(6.0, gt=0)
    upstream_route_timeouts: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    upstream_route_connect_timeouts: Annotated[dict[str, float], NoDecode] = Field(default_factory=dict)
    # Bulkheads: each upstream has a connection pool of its own, exactly this large, and at
    # most this many requests in flight (503 beyond). Routes may have a smaller cap of their
    # own (gateway.routing.TABLE), overridden by ``UPSTREAM_ROUTE_MAX_IN_FLIGHT=ping-delay=8``.
    upstream_max_in_flight: int = Field(256, ge=1)
    upstream_route_max_in_flight: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    # Requests in flight per client address and per token subject (429 beyond; 0: no cap).
    # Like the rate limits, the defaults leave a load test from one address alone.
    in_flight_per_address: int = Field(256, ge=0)
    in_flight_per_subject: int = Field(256, ge=0)
    # The whole request body must arrive within this time (408 problem otherwise). The body
    # is read before an upstream slot is taken: a client that dribbles holds none.
    body_read_timeout_seconds: float = Field(10.0, gt=0)
    # Idle pooled connections are closed after this long. It must stay below the services'
    # hypercorn keep-alive (keep_alive_seconds, 75 s), so the gateway always drops an idle
    # connection before the server does and never sends a request into a socket the server
    # is closing at that moment.
    upstream_keepalive_seconds: float = Field(30.0, gt=0)

    # Instances: active health checks on each instance's /readyz; a circuit breaker per
    # instance that opens after breaker_failures consecutive failures (timeouts, broken
    # exchanges) and at once on a connect error (passive ejection), stays open for
    # breaker_open_seconds, then lets one trial request through (half-open).
    health_check_path: str = "/readyz"
    health_check_interval_seconds: float = Field(1.0, gt=0)
    health_check_timeout_seconds: float = Field(1.0, gt=0)
    # Consecutive failed checks before an instance counts as unhealthy (one success heals it).
    health_check_failures: int = Field(2, ge=1)
    breaker_failures: int = Field(3, ge=1)
    breaker_open_seconds: float = Field(5.0, gt=0)

    # Connections the kernel queues before the gateway accepts them (aiohttp's default is
    # 128): a burst of a thousand clients is accepted, then shed by the bulkheads, instead
    # of waiting out SYN retransmits. Capped by net.core.somaxconn.
    listen_backlog: int = Field(1024, ge=1)

    # Slow clients: the whole request head must arrive within this time of the connection
    # opening (or of the previous response on a kept-alive connection).
    header_read_timeout_seconds: float = Field(10.0, gt=0)
    # The request line (method, path and query) and any one header may be at most this long.
    max_request_line_bytes: int = Field(16 * 1024, ge=8190, le=1024 * 1024)
    max_header_bytes: int = Field(16 * 1024, ge=8190, le=1024 * 1024)

    # Edge auth: tokens of this issuer (PUBLIC_URL, else AUTH_URL) and audience, keys from
    # JWKS_URL (default: <AUTH_URL>/.well-known/jwks.json). Verified tokens are cached by their
    # string for at most TOKEN_CACHE_SECONDS (and never past their expiry), at most
    # token_cache_size of them; lifetime cap and JWKS schedule: the kit's settings.
    token_audience: str = "quartet"  # noqa: S105 - an audience name, not a secret
    jwks_url: str | None = None
    token_leeway_seconds: int = Field(30, ge=0, le=300)
    token_cache_size: int = Field(10_000, ge=0)

    # Rate limits (token buckets): requests per second and burst, per client address, per
    # token subject, and per client address on POSTs to the login endpoints (/auth/token,
    # /auth/authorize, /auth/register, /auth/revoke, /auth/introspect). 0 per second turns a
    # budget off. Defaults leave a load test from one address (thousands of requests per
    # second) unthrottled; production sets smaller ones.
    rate_limit_address_per_second: float = Field(5000.0, ge=0)
    rate_limit_address_burst: int = Field(10_000, ge=1)
    rate_limit_subject_per_second: float = Field(5000.0, ge=0)
    rate_limit_subject_burst: int = Field(10_000, ge=1)
    rate_limit_login_per_second: float = Field(2.0, ge=0)
    rate_limit_login_burst: int = Field(20, ge=1)
    # Client addresses (CIDRs) never rate limited, e.g. ``127.0.0.0/8`` for a local benchmark.
    rate_limit_exempt: CommaList = ()
    # Proxies (CIDRs) whose X-Forwarded-For is believed: the client is the rightmost
    # address in that header that is not itself a trusted proxy.
    trusted_proxies: CommaList = ()
    # Share the buckets between several gateways through Redis; in-process when unset.
    redis_url: str | None = None
    redis_timeout_seconds: float = Field(0.25, gt=0)

    # The merged /openapi.json is fetched from the services at most this often.
    openapi_cache_seconds: float = Field(30.0, ge=0)
    # /docs: Authorize signs in through auth's authorization code + PKCE flow as this public
    # client (auth registers it with <origin>/docs/oauth2-redirect), asking for these scopes.
    docs_client_id: str = "quartet-docs"
    docs_scopes: CommaList = ("profile", "todos:read", "todos:write", "reports:read", "reports:write")

    web_dir: Path = REPO_ROOT / "web"
    # Regions the app's diagnostics page measures: "name=url" pairs, comma-separated. The
    # url is /ping of that region's gateway (absolute for another origin, which must list
    # this origin in its CORS_ORIGINS). Served to the app as /app/config.json.
    ping_regions: CommaList = ("local=/ping",)
    cors_origins: CommaList = ("http://localhost:8080",)
    cors_max_age_seconds: int = Field(600, ge=0)

    @field_validator("auth_urls", "todos_urls", "ping_urls", "reports_urls", "live_urls", mode="before")
    @classmethod
    def _upstream_urls(cls, value: Any) -> tuple[str, ...]:
        urls = split_commas(value)
        if not urls:
            raise ValueError("at least one upstream URL is required")
        for url in urls:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"upstream URL must start with http:// or https://: {url!r}")
        return tuple(url.rstrip("/") for url in urls)

    @field_validator("ping_regions", mode="before")
    @classmethod
    def _regions(cls, value: Any) -> tuple[str, ...]:
        regions = split_commas(value)
        for region in regions:
            name, sep, url = region.partition("=")
            if not sep or not name.strip() or not (url.startswith("/") or url.startswith(("http://", "https://"))):
                raise ValueError(f"a ping region is name=/path or name=http(s)://host/path, not {region!r}")
        return tuple(regions)

    def ping_region_list(self) -> list[dict[str, str]]:
        return [{"name": n.strip(), "url": u.strip()} for n, _, u in (r.partition("=") for r in self.ping_regions)]

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _origins(cls, value: Any) -> tuple[str, ...]:
        return tuple(origin.rstrip("/") for origin in split_commas(value))

    @field_validator("docs_scopes", mode="before")
    @classmethod
    def _scopes(cls, value: Any) -> tuple[str, ...]:
        return tuple(split_commas(value))

    @field_validator("rate_limit_exempt", "trusted_proxies", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> tuple[str, ...]:
        networks = split_commas(value)
        for network in networks:
            ipaddress.ip_network(network, strict=False)  # ValueError when it is not a CIDR
        return tuple(networks)

    @field_validator(
        "upstream_route_timeouts", "upstream_route_connect_timeouts", "upstream_route_max_in_flight", mode="before"
    )
    @classmethod
    def _route_timeouts(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        timeouts: dict[str, str] = {}
        for item in split_commas(value):
            name, sep, seconds = item.partition("=")
            if not sep:
                raise ValueError(f"expected name=seconds, got {item!r}")
            timeouts[name.strip()] = seconds.strip()
        return timeouts

    @model_validator(mode="after")
    def _consistent(self) -> GatewaySettings:
        per_route: tuple[dict[str, float] | dict[str, int], ...] = (
            self.upstream_route_timeouts,
            self.upstream_route_connect_timeouts,
            self.upstream_route_max_in_flight,
        )
        for values in per_route:
            unknown = set(values) - ROUTE_NAMES
            if unknown:
                raise ValueError(f"unknown routes in per-route settings: {sorted(unknown)}")
            if any(value <= 0 for value in values.values()):
                raise ValueError("per-route timeouts and caps must be positive")
        if self.upstream_keepalive_seconds >= self.keep_alive_seconds:
            raise ValueError("upstream_keepalive_seconds must be below the services' keep_alive_seconds")
        return self

    def upstream_urls(self, name: str) -> tuple[str, ...]:
        """The base URLs of one upstream service, by name (one of ``UPSTREAM_NAMES``)."""
        urls: tuple[str, ...] = getattr(self, f"{name}_urls")
        return urls

    def route_connect_timeout(self, name: str) -> float:
        """The connect timeout for requests routed to ``name``."""
        return self.upstream_route_connect_timeouts.get(name, self.upstream_connect_timeout_seconds)

    @property
    def jwks(self) -> str:
        """Where the signing keys are fetched from: the auth service's internal address, not the issuer
        (the issuer may be this gateway's own public URL)."""
        return self.jwks_url or f"{self.auth_url.rstrip('/')}/.well-known/jwks.json"
