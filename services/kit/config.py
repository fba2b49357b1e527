"""Typed settings, read once from the environment (12-factor).

Each service subclasses :class:`ServiceSettings` and sets its own defaults
(name, port, database). This is the only module that reads ``os.environ``; the
rest of the code gets a settings object.
"""

from __future__ import annotations

import os
import socket
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ServiceSettings(BaseSettings):
    """What every service reads from its environment. Defaults suit a developer machine."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, case_sensitive=False)

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
    db_acquire_timeout_seconds: float = Field(5.0, gt=0)
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

    # The OAuth2 issuer every token is checked against.
    auth_url: str = "http://127.0.0.1:8001"

    # Limits: every input is bounded, everything that waits has a timeout.
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    request_timeout_seconds: float = Field(15.0, gt=0)

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

    @property
    def events_queue_name_prefix(self) -> str:
        return self.events_queue_prefix or self.service_name

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level
