"""The plan: every process ``make up`` runs, with its name, module, port and environment.

Built from the table (scripts/suite/table.py) and the caller's environment: instance
counts, the services chosen (``QUARTET_SERVICES=ping,todos``), each service's own
database and broker user, the secrets it uses, and the gateway's upstream lists.
Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace

from scripts.suite import checkout, infra, prometheus, secrets
from scripts.suite.procs import Proc
from scripts.suite.table import (
    DEFAULT_INSTANCES,
    GATEWAY,
    GATEWAY_METRICS_PORT,
    INSTANCE_PORT_STEP,
    SERVICES,
    SHARED_DEFAULTS,
    Service,
    base_name,
    env_prefix,
    instance_name,
    row,
)

# PostgreSQL connections the local suite may hold at most, all pools full, shared evenly
# by the processes that have a database (PostgreSQL's default max_connections is 100;
# the rest stays for tests, migrations and psql beside a running suite).
DEFAULT_DB_CONNECTION_BUDGET = 50
DB_POOL_FLOOR = 2
DB_POOL_CEILING = 10
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Plan:
    chosen: list[Service]  # the rows of SERVICES this run covers
    services: list[Proc]  # HTTP services, every instance
    extras: list[Proc]  # workers, started after their service's migrations
    gateway: Proc
    upstreams: dict[str, str]  # gateway env: AUTH_URLS=...
    prometheus: Proc | None = None  # when Debian's prometheus is installed (and QUARTET_PROMETHEUS is not 0)

    def all_procs(self) -> list[Proc]:
        return [*self.services, *self.extras, self.gateway, *([self.prometheus] if self.prometheus else [])]

    @property
    def gateway_metrics_port(self) -> int:
        return int(self.gateway.env["METRICS_PORT"])


def port_offset(environ: Mapping[str, str]) -> int:
    """``QUARTET_PORT_OFFSET``: added to every port of the plan (a second suite beside the first; tests)."""
    raw = environ.get("QUARTET_PORT_OFFSET", "0") or "0"
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"QUARTET_PORT_OFFSET must be a number, not {raw!r}") from None
    if not 0 <= value <= 50000:
        raise SystemExit("QUARTET_PORT_OFFSET must be 0..50000")
    return value


def count(environ: Mapping[str, str], name: str, default: int = 1) -> int:
    raw = environ.get(f"{env_prefix(name)}_INSTANCES") or environ.get("QUARTET_INSTANCES") or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{env_prefix(name)}_INSTANCES must be a number, not {raw!r}") from None
    if not 1 <= value <= 9:
        raise SystemExit(f"{env_prefix(name)}_INSTANCES must be 1..9 (ports step by {INSTANCE_PORT_STEP})")
    return value


def pg_admin_url(environ: Mapping[str, str]) -> str:
    return environ.get("QUARTET_PG_ADMIN_URL") or environ.get("QUARTET_TEST_PG") or DEFAULT_PG_ADMIN_URL


def database_spec(service: Service, environ: Mapping[str, str]) -> infra.DatabaseSpec:
    """The role and database of ``service`` for this checkout (scripts/suite/checkout.py)."""
    name = checkout.database_name(service.name, environ)
    return infra.DatabaseSpec(name, environ.get(f"{env_prefix(service.name)}_DB_PASSWORD", f"{name}_dev"))


def database_url(service: Service, environ: Mapping[str, str]) -> str:
    own = environ.get(f"{env_prefix(service.name)}_DATABASE_URL")
    if own:
        return own
    pg = infra.Endpoint.from_url(pg_admin_url(environ), 5432)
    return database_spec(service, environ).url(pg)


def chosen(environ: Mapping[str, str]) -> list[Service]:
    """The rows of :data:`SERVICES` to run: all, or those ``QUARTET_SERVICES=ping,todos`` names."""
    wanted = {n.strip() for n in environ.get("QUARTET_SERVICES", "").split(",") if n.strip()}
    unknown = wanted - {s.name for s in SERVICES}
    if unknown:
        raise SystemExit(f"QUARTET_SERVICES names unknown services: {', '.join(sorted(unknown))}")
    return [s for s in SERVICES if not wanted or s.name in wanted]


def db_pool_size(environ: Mapping[str, str], processes_with_database: int) -> int:
    """Each process's pool maximum: the connection budget shared evenly, within [2, 10]."""
    raw = environ.get("QUARTET_DB_CONNECTION_BUDGET", str(DEFAULT_DB_CONNECTION_BUDGET))
    try:
        budget = int(raw)
    except ValueError:
        raise SystemExit(f"QUARTET_DB_CONNECTION_BUDGET must be a number, not {raw!r}") from None
    share = budget // max(1, processes_with_database)
    if share < DB_POOL_FLOOR:
        raise SystemExit(
            f"QUARTET_DB_CONNECTION_BUDGET={budget} leaves under {DB_POOL_FLOOR} connections for each of "
            f"{processes_with_database} processes with a database: raise it or run fewer instances"
        )
    return min(DB_POOL_CEILING, share)


def service_env(svc: Service, environ: Mapping[str, str], shared: Mapping[str, str], pool: int) -> dict[str, str]:
    """What every process of ``svc`` (instances and workers) is given, before its own port and name."""
    own = {k: environ.get(k, v) for k, v in svc.env.items()}  # the caller's environment wins, as for shared
    env = {**shared, **own, "HOST": "127.0.0.1"}
    own_amqp = secrets.service_amqp_url(svc.name, environ)
    if own_amqp is not None:
        env["AMQP_URL"] = own_amqp
        # Consumers accept an event only from its owner's user: this checkout's users.
        env["EVENTS_PRODUCERS"] = environ.get("EVENTS_PRODUCERS") or json.dumps(secrets.event_producers(environ))
    env |= secrets.secrets_of(svc.name, environ)
    if "LIVE_REDIS_URL" in env:  # this checkout's own keys: another checkout's live never reads them
        env["LIVE_KEY_PREFIX"] = environ.get("LIVE_KEY_PREFIX") or checkout.suffixed("quartet", environ) + ":"
    if svc.has_database:
        env["DATABASE_URL"] = database_url(svc, environ)
        env["DB_POOL_MAX"] = str(pool)  # consumers cap their prefetch at it (kit.events.wiring)
    return env


def shared_settings(environ: Mapping[str, str], offset: int) -> dict[str, str]:
    """SHARED_DEFAULTS with the ports of the plan; the caller's environment wins."""
    auth_port, gateway_port = row("auth").port + offset, GATEWAY.port + offset
    defaults = {
        **SHARED_DEFAULTS,
        "AUTH_URL": f"http://127.0.0.1:{auth_port}",
        "PUBLIC_URL": f"http://localhost:{gateway_port}",
    }
    return {k: environ.get(k, v) for k, v in defaults.items()}


def moved_defaults(svc: Service, environ: Mapping[str, str], gateway_port: int) -> dict[str, str]:
    """``svc.env``, and with QUARTET_PORT_OFFSET the settings whose defaults name the gateway's port."""
    if gateway_port == GATEWAY.port:
        return dict(svc.env)
    both = (f"http://localhost:{gateway_port}", f"http://127.0.0.1:{gateway_port}")
    moved = {
        "auth": {
            "WEB_REDIRECT_URIS": f"{both[0]}/app/callback",
            "WEB_EXTRA_REDIRECT_URIS": f"{both[1]}/app/callback",
            "DOCS_REDIRECT_URIS": ",".join(f"{base}/docs/oauth2-redirect" for base in both),
        },
        "gateway": {"CORS_ORIGINS": both[0]},
    }.get(svc.name, {})
    return {**svc.env, **{k: environ.get(k, v) for k, v in moved.items()}}


def prometheus_proc(environ: Mapping[str, str], offset: int) -> Proc | None:
    """Prometheus as a process of the plan, when Debian's ``prometheus`` is installed."""
    program = prometheus.binary()
    if program is None or environ.get("QUARTET_PROMETHEUS", "1") == "0":
        return None
    listen = prometheus.port(environ, offset)
    argv = tuple(prometheus.command(prometheus.config_path(), listen, program))
    return Proc(prometheus.NAME, prometheus.NAME, listen, {}, argv, ready_path=prometheus.READY_PATH)


def plan(environ: Mapping[str, str]) -> Plan:
    """Every process `make up` would run, with its name, module, port and env."""
    offset = port_offset(environ)
    shared = shared_settings(environ, offset)
    gateway_port = GATEWAY.port + offset
    services: list[Proc] = []
    extras: list[Proc] = []
    upstreams: dict[str, str] = {}
    rows = chosen(environ)
    with_database = sum(
        count(environ, svc.name, DEFAULT_INSTANCES) + sum(count(environ, e.name) for e in svc.extras)
        for svc in rows
        if svc.has_database
    )
    pool = db_pool_size(environ, with_database)
    for svc in rows:
        base = service_env(replace(svc, env=moved_defaults(svc, environ, gateway_port)), environ, shared, pool)
        urls = []
        for n in range(1, count(environ, svc.name, DEFAULT_INSTANCES) + 1):
            name = instance_name(svc.name, n)
            port = svc.port + offset + INSTANCE_PORT_STEP * (n - 1)
            services.append(Proc(name, svc.module, port, {**base, "PORT": str(port), "INSTANCE": name}))
            urls.append(f"http://127.0.0.1:{port}")
        upstreams[svc.urls_setting] = ",".join(urls)
        for extra in svc.extras:
            for n in range(1, count(environ, extra.name) + 1):
                name = instance_name(extra.name, n)
                env = {**base, "INSTANCE": name}
                if extra.metrics_port is not None:
                    env["WORKER_METRICS_PORT"] = str(extra.metrics_port + offset + INSTANCE_PORT_STEP * (n - 1))
                extras.append(Proc(name, extra.module, None, env))
    env = {
        **shared,
        **moved_defaults(GATEWAY, environ, gateway_port),
        "HOST": "127.0.0.1",
        "PORT": str(gateway_port),
        # The private listener Prometheus scrapes (the public port serves no /metrics).
        "METRICS_PORT": str(GATEWAY_METRICS_PORT + offset),
        "INSTANCE": GATEWAY.name,
        **upstreams,
    }
    gateway = Proc(GATEWAY.name, GATEWAY.module, gateway_port, env)
    return Plan(rows, services, extras, gateway, upstreams, prometheus_proc(environ, offset))


def all_procs(the_plan: Plan) -> list[Proc]:
    return the_plan.all_procs()


def restart_order(the_plan: Plan, names: list[str]) -> list[Proc]:
    """The processes of the named services (every instance, then workers); all but the gateway when empty."""
    known = {s.name for s in (*SERVICES, GATEWAY)}
    unknown = set(names) - known
    if unknown:
        raise SystemExit(f"unknown service: {', '.join(sorted(unknown))} (one of: {', '.join(sorted(known))})")
    wanted = set(names) or {s.name for s in SERVICES}
    order: list[Proc] = []
    for svc in SERVICES:
        if svc.name in wanted:
            workers = {e.name for e in svc.extras}
            order += [p for p in the_plan.services if base_name(p.name) == svc.name]
            order += [p for p in the_plan.extras if base_name(p.name) in workers]
    if GATEWAY.name in wanted:
        order.append(the_plan.gateway)
    return order
