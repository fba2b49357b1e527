"""Typed settings, read once from the environment (12-factor).

Each service subclasses :class:`ServiceSettings` and sets its own defaults
(name, port, database). This is the only module that reads ``os.environ``; the
rest of the code gets a settings object.

Where a value comes from, first match wins: the process environment, then a
dotenv file (``.env`` in the working directory, or the file ``QUARTET_ENV_FILE``
names; an empty ``QUARTET_ENV_FILE`` reads none), then the class default.
``.env.example`` lists every setting with its default.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    DotEnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

# Names the dotenv file instead of ./.env; empty for none (the tests keep a developer's .env out).
ENV_FILE_VARIABLE = "QUARTET_ENV_FILE"
DEFAULT_ENV_FILE = ".env"

# A comma-separated env value (``A,B``): a settings class splits it with split_commas in a
# ``mode="before"`` validator instead of reading it as JSON.
CommaList = Annotated[tuple[str, ...], NoDecode]


def split_commas(value: Any) -> list[str]:
    """The stripped, non-empty items of a comma-separated string (or of a sequence given as is)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(part).strip() for part in value if str(part).strip()]


def is_loopback_host(host: str) -> bool:
    """Is ``host`` this machine only (localhost, 127.0.0.0/8, ::1)?"""
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str) -> bool:
    """Does ``url`` name this machine only (localhost, 127.0.0.0/8, ::1)?"""
    return is_loopback_host(urlsplit(url).hostname or "")


# The broker users of `make up`, compose and the Kubernetes manifests, by the events they own.
DEFAULT_EVENT_PRODUCERS = {"user": "quartet_auth", "todo": "quartet_todos", "report": "quartet_reports"}
_PREFIX = re.compile(r"^[a-z][a-z0-9_]*$")


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ServiceSettings(BaseSettings):
    """What every service reads from its environment. Defaults suit a developer machine."""

    model_config = SettingsConfigDict(
        extra="ignore", frozen=True, case_sensitive=False, env_file=DEFAULT_ENV_FILE, env_file_encoding="utf-8"
    )

    service_name: str = "service"
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    region: str = "local"
    instance: str = Field(default_factory=_default_instance)
    log_level: str = "INFO"

    # PostgreSQL; ``None`` for a service without a database (ping).
    database_url: str | None = None
    db_pool_min: int = Field(1, ge=0)
    db_pool_max: int = Field(10, ge=1)
    db_acquire_timeout_seconds: float = Field(3.0, gt=0)  # under the handler deadline: 503, not 504
    db_command_timeout_seconds: float = Field(10.0, gt=0)
    db_startup_timeout_seconds: float = Field(30.0, ge=0)
    # On release asyncpg resets session state (RESET ALL, UNLISTEN *, advisory unlocks): one
    # more round trip per request. A service that never sets session state may skip it (an
    # open transaction is still rolled back).
    db_reset_session_on_release: bool = True

    # RabbitMQ and the event exchange (tests use a unique exchange per run).
    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/"
    events_exchange: str = "quartet.events"
    # Consumer: messages in flight per process (keep at or below db_pool_max) and the
    # delays of the retry queues before a failing event is dead-lettered.
    events_prefetch: int = Field(10, ge=1, le=1000)
    # Names this service's queues (<prefix>.events, .dlq, .retry.*); defaults to service_name.
    # Instances of one service share it; tests set a unique one so they never steal each other's events.
    events_queue_prefix: str | None = Field(None, pattern=r"^[A-Za-z0-9_.-]{1,100}$")
    events_retry_delays: tuple[float, ...] = (1.0, 10.0, 60.0)
    # Who may produce which events: type prefix (``user`` of ``user.deleted``) -> the broker
    # user that owns it. The relay stamps its broker user on every message (AMQP ``user_id``,
    # which RabbitMQ validates); consumers dead-letter an event whose type prefix is not
    # listed or whose validated user_id is not the owner. JSON in the environment:
    # EVENTS_PRODUCERS='{"user": "quartet_auth", ...}'.
    events_producers: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_EVENT_PRODUCERS))

    # Where this process reaches the auth service (its JWKS, its token endpoint): an internal
    # address such as compose's http://auth:8001.
    auth_url: str = "http://127.0.0.1:8001"
    # The public URL of the suite's authorization server as users and outside clients see it
    # (e.g. the gateway, http://localhost:8080). It is the issuer identifier: every token's
    # `iss`, the RFC 8414 metadata's `issuer` and endpoints. Unset: AUTH_URL. Every process of
    # one suite must share the same value (it is what verifiers expect in `iss`).
    public_url: str | None = None

    # Access-token verification (services/kit/security): tokens living longer than this
    # (exp - iat) are refused whoever signed them; a verified token is trusted from the cache
    # at most this long before its signature and key are checked again; the issuer's JWKS is
    # refetched on this schedule, so a revoked key stops being accepted within it.
    token_max_lifetime_seconds: int = Field(3600, ge=60, le=24 * 3600)
    token_cache_seconds: float = Field(60.0, ge=0, le=3600)
    jwks_refresh_seconds: float = Field(300.0, ge=10, le=3600)

    # Limits: every input is bounded, everything that waits has a timeout.
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    # Every handler's deadline (504 problem past it): short, for interactive calls. Slow
    # handlers declare their own (services.kit.app.handler_deadline). The gateway's route
    # timeouts sit a little above these (gateway/routing.py), so the service answers first.
    request_timeout_seconds: float = Field(5.0, gt=0)

    # Hypercorn. The gateway's upstream keep-alive must stay below keep_alive_seconds.
    keep_alive_seconds: float = Field(75.0, gt=0)
    # On SIGTERM: /readyz turns 503 at once; after drain_delay the listener closes and
    # in-flight requests get up to shutdown_grace to finish.
    drain_delay_seconds: float = Field(0.0, ge=0)
    shutdown_grace_seconds: float = Field(20.0, gt=0)

    # Tracing (OpenTelemetry; docs/observability.md). Spans go over OTLP/HTTP (protobuf) to
    # <endpoint>/v1/traces, or to the traces endpoint as given; with neither set, nothing is
    # installed at all. The SDK reads the other standard OTEL_* variables itself (headers,
    # timeout, compression, batch sizes).
    otel_exporter_otlp_endpoint: str | None = None
    otel_exporter_otlp_traces_endpoint: str | None = None
    otel_service_name: str | None = None
    otel_traces_sampler: Literal[
        "always_on",
        "always_off",
        "traceidratio",
        "parentbased_always_on",
        "parentbased_always_off",
        "parentbased_traceidratio",
    ] = "parentbased_always_on"
    otel_traces_sampler_arg: float = Field(1.0, ge=0, le=1)

    @property
    def otlp_traces_url(self) -> str | None:
        """Where spans are exported; None when tracing is off."""
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        return None

    @field_validator("otel_exporter_otlp_endpoint", "otel_exporter_otlp_traces_endpoint", "otel_service_name")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("otel_traces_sampler", mode="before")
    @classmethod
    def _sampler_name(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Looked up at each construction (not at import), so a test or a command can pick the file.
        chosen = os.environ.get(ENV_FILE_VARIABLE)
        if chosen is not None:
            dotenv_settings = DotEnvSettingsSource(settings_cls, env_file=chosen or None)
        return init_settings, env_settings, dotenv_settings, file_secret_settings

    @property
    def broker_user(self) -> str:
        """The broker username of ``amqp_url`` (what RabbitMQ authenticates this process as)."""
        return unquote(urlsplit(self.amqp_url).username or "guest")

    @property
    def issuer(self) -> str:
        """The issuer identifier tokens carry in ``iss`` (``PUBLIC_URL``, else ``AUTH_URL``)."""
        return (self.public_url or self.auth_url).rstrip("/")

    @property
    def events_queue_name_prefix(self) -> str:
        return self.events_queue_prefix or self.service_name

    @field_validator("events_producers")
    @classmethod
    def _producers(cls, value: dict[str, str]) -> dict[str, str]:
        for prefix, user in value.items():
            if not _PREFIX.match(prefix):
                raise ValueError(f"event type prefix {prefix!r} must be one lowercase word, like 'user'")
            if not user:
                raise ValueError(f"event type prefix {prefix!r} needs a broker user")
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level
