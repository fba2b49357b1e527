"""The plan: every process ``make up`` runs, with its name, module, port and environment.

Built from the table (scripts/suite/table.py) and the caller's environment: instance
counts, the services chosen (``QUARTET_SERVICES=ping,todos``), each service's own
database and broker user, the secrets it uses, and the gateway's upstream lists.
Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from scripts.suite import infra, secrets
from scripts.suite.procs import Proc
from scripts.suite.table import (
    DEFAULT_INSTANCES,
    GATEWAY,
    INSTANCE_PORT_STEP,
    SERVICES,
    SHARED_DEFAULTS,
    Service,
    base_name,
    env_prefix,
    instance_name,
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

    def all_procs(self) -> list[Proc]:
        return [*self.services, *self.extras, self.gateway]


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
    name = f"quartet_{service.name}"
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
    env |= secrets.secrets_of(svc.name, environ)
    if svc.has_database:
        env["DATABASE_URL"] = database_url(svc, environ)
        env["DB_POOL_MAX"] = str(pool)  # consumers cap their prefetch at it (kit.events.wiring)
    return env


def plan(environ: Mapping[str, str]) -> Plan:
    """Every process `make up` would run, with its name, module, port and env."""
    shared = {k: environ.get(k, v) for k, v in SHARED_DEFAULTS.items()}
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
        base = service_env(svc, environ, shared, pool)
        urls = []
        for n in range(1, count(environ, svc.name, DEFAULT_INSTANCES) + 1):
            name = instance_name(svc.name, n)
            port = svc.port + INSTANCE_PORT_STEP * (n - 1)
            services.append(Proc(name, svc.module, port, {**base, "PORT": str(port), "INSTANCE": name}))
            urls.append(f"http://127.0.0.1:{port}")
        upstreams[svc.urls_setting] = ",".join(urls)
        for extra in svc.extras:
            for n in range(1, count(environ, extra.name) + 1):
                name = instance_name(extra.name, n)
                env = {**base, "INSTANCE": name}
                if extra.metrics_port is not None:
                    env["WORKER_METRICS_PORT"] = str(extra.metrics_port + INSTANCE_PORT_STEP * (n - 1))
                extras.append(Proc(name, extra.module, None, env))
    env = {**shared, "HOST": "127.0.0.1", "PORT": str(GATEWAY.port), "INSTANCE": GATEWAY.name, **upstreams}
    gateway = Proc(GATEWAY.name, GATEWAY.module, GATEWAY.port, env)
    return Plan(rows, services, extras, gateway, upstreams)


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
