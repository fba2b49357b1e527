"""The layout of the suite: every service, its module, port, database and workers.

:data:`SERVICES` (with :data:`GATEWAY` in front) is the one description of the
suite. ``make up`` (python -m scripts.suite) plans its processes from it, the end-to-end
tests start theirs from it (tests/suite.py), and compose.yaml and deploy/k8s are
checked against it (tests/test_compose.py, tests/test_k8s.py). Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Extra:
    """A process that belongs to a service but serves no HTTP port (the reports worker)."""

    name: str
    module: str
    # Its Prometheus metrics port (instance n: + INSTANCE_PORT_STEP * (n - 1)), as WORKER_METRICS_PORT.
    metrics_port: int | None = None


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port: int
    has_database: bool
    extras: tuple[Extra, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)  # service-specific defaults

    @property
    def urls_setting(self) -> str:
        """The gateway's setting listing this service's instances: ``TODOS_URLS``."""
        return f"{env_prefix(self.name)}_URLS"


# The suite. Each HTTP service runs DEFAULT_INSTANCES instances (`QUARTET_INSTANCES` for all,
# `<NAME>_INSTANCES` for one, 1..9); instance n (1-based) listens on port + 10*(n-1):
# todos on 8002 and 8012, auth on 8001 and 8011... Workers run one each unless told.
SERVICES: tuple[Service, ...] = (
    Service(
        "auth",
        "services.auth",
        8001,
        has_database=True,
        # The app may be opened as localhost or 127.0.0.1; both callbacks are the gateway's.
        env={"WEB_EXTRA_REDIRECT_URIS": "http://127.0.0.1:8080/app/callback"},
    ),
    Service(
        "todos",
        "services.todos",
        8002,
        has_database=True,
        # The first-page cache every instance shares (docs/caching.md); the machine's Redis.
        env={"CACHE_REDIS_URL": "redis://127.0.0.1:6379/0"},
    ),
    Service("ping", "services.ping", 8003, has_database=False),
    Service(
        "reports",
        "services.reports",
        8004,
        has_database=True,
        extras=(Extra("reports-worker", "services.reports.worker", metrics_port=9104),),
    ),
    # Server-Sent Events (docs/live.md): no database; per-user feeds in the machine's Redis.
    Service("live", "services.live", 8005, has_database=False, env={"LIVE_REDIS_URL": "redis://127.0.0.1:6379/0"}),
)
# The gateway routes to every row of SERVICES (its `<NAME>_URLS` settings).
GATEWAY = Service("gateway", "gateway", 8080, has_database=False)
# The gateway's private listener for /metrics (METRICS_PORT; loopback only).
GATEWAY_METRICS_PORT = 9080
INSTANCE_PORT_STEP = 10
DEFAULT_INSTANCES = 2

# Shared settings every process gets unless the caller's environment sets them.
SHARED_DEFAULTS = {
    "REGION": "local",
    "LOG_LEVEL": "INFO",
    "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
    "AUTH_URL": "http://127.0.0.1:8001",
    # The issuer users see: the gateway (tokens' `iss`, RFC 8414 metadata; docs/auth.md).
    "PUBLIC_URL": "http://localhost:8080",
    "EVENTS_EXCHANGE": "quartet.events",
    # On SIGTERM an instance answers /readyz 503 for this long before it stops listening: the
    # gateway's health checks (every 2 s, 2 failures) take it out of rotation first, so a
    # rolling restart (`make restart`) and `make down` lose no request.
    "DRAIN_DELAY_SECONDS": "6",
}


def env_prefix(name: str) -> str:
    return name.upper().replace("-", "_")


def instance_name(name: str, n: int) -> str:
    return name if n == 1 else f"{name}-{n}"


def base_name(name: str) -> str:
    """``todos-2`` → ``todos``: the row an instance belongs to."""
    head, sep, tail = name.rpartition("-")
    return head if sep and tail.isdigit() else name


def row(name: str) -> Service:
    """The row of ``name`` (a service of :data:`SERVICES` or the gateway)."""
    for svc in (*SERVICES, GATEWAY):
        if svc.name == name:
            return svc
    raise KeyError(name)


def workers() -> dict[str, tuple[Service, Extra]]:
    """Every worker of the table by name, with the service it belongs to."""
    return {extra.name: (svc, extra) for svc in SERVICES for extra in svc.extras}


def modules() -> dict[str, str]:
    """Process name → module, for every service, worker and the gateway."""
    found = {svc.name: svc.module for svc in (*SERVICES, GATEWAY)}
    return found | {name: extra.module for name, (_, extra) in workers().items()}


def resolve(name: str) -> tuple[str, int | None] | None:
    """(module, port) of a process name from the table: ``todos-2`` → services.todos on 8012.

    Workers have no port; a name the table does not know gives None.
    """
    for svc in (*SERVICES, GATEWAY):
        candidates = ((svc.name, svc.module, svc.port), *((e.name, e.module, None) for e in svc.extras))
        for candidate, module, port in candidates:
            suffix = name.removeprefix(candidate)
            if suffix == "":
                return module, port
            if suffix.startswith("-") and suffix[1:].isdigit() and int(suffix[1:]) >= 1:
                return module, None if port is None else port + INSTANCE_PORT_STEP * (int(suffix[1:]) - 1)
    return None
