#!/usr/bin/env python3
"""The local supervisor behind ``make up``, ``make down``, ``make ps`` and ``make logs``.

It runs the suite as plain processes on this machine, against PostgreSQL and
RabbitMQ on localhost, when no Docker engine answers. ``make`` calls it with the
venv's python after the venv step; the script itself needs only the standard
library (``down``, ``ps`` and ``logs`` work without a venv), and ``up`` imports
asyncpg for the one step that creates databases.

The suite is the table :data:`SERVICES`: a row is started only when its module
exists on disk (``<package>/__main__.py``), so a new service is one row, already
here, that switches itself on when its code lands.

    python scripts/suite.py up | down | restart [SERVICE...] | ps | logs [-f] [-n N] [NAME...] | infra | urls
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import suite_broker as broker
import suite_infra as infra
import suite_procs as procs
import suite_prometheus as prometheus
from suite_procs import ROOT, RUN_DIR, Proc


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
    Service("todos", "services.todos", 8002, has_database=True),
    Service("ping", "services.ping", 8003, has_database=False),
    Service(
        "reports",
        "services.reports",
        8004,
        has_database=True,
        extras=(Extra("reports-worker", "services.reports.worker", metrics_port=9104),),
    ),
)
GATEWAY = Service("gateway", "gateway", 8080, has_database=False)
INSTANCE_PORT_STEP = 10
DEFAULT_INSTANCES = 2
# PostgreSQL connections the local suite may hold at most, all pools full, shared evenly
# by the processes that have a database (PostgreSQL's default max_connections is 100;
# the rest stays for tests, migrations and psql beside a running suite).
DEFAULT_DB_CONNECTION_BUDGET = 50
DB_POOL_FLOOR = 2
DB_POOL_CEILING = 10

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
# Secrets `make up` generates once per checkout (kept in .run/secrets.env, mode 0600) and
# hands to the services named here (and their workers). The caller's environment wins.
WORKER_SECRET = "REPORTS_WORKER_CLIENT_SECRET"
CURSOR_SECRET = "CURSOR_SECRET"
# Base64 of 32 random bytes (token_urlsafe(32) is exactly that): seals auth's private signing keys.
SIGNING_KEK = "SIGNING_KEK"
SECRET_USERS = {
    WORKER_SECRET: frozenset({"auth", "reports"}),
    CURSOR_SECRET: frozenset({"todos"}),
    SIGNING_KEK: frozenset({"auth"}),
}
# One broker user per service (scripts/suite_broker.py), its password generated like the secrets
# above; the service gets it inside AMQP_URL. The admin password is compose's (management UI).
BROKER_PASSWORDS = {service: f"{service.upper()}_AMQP_PASSWORD" for service in broker.ROLES}
BROKER_ADMIN_PASSWORD = "RABBITMQ_ADMIN_PASSWORD"
GENERATED = (*SECRET_USERS, *BROKER_PASSWORDS.values(), BROKER_ADMIN_PASSWORD)
DEFINITIONS_FILE_NAME = "rabbitmq-definitions.json"
SECRETS_FILE_NAME = "secrets.env"
DEFAULT_PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
GATEWAY_UPSTREAMS_FILE = RUN_DIR / "gateway.upstreams.json"


def module_exists(module: str) -> bool:
    """Is ``python -m module`` runnable from this checkout?"""
    path = ROOT.joinpath(*module.split("."))
    return (path / "__main__.py").is_file() or path.with_suffix(".py").is_file()


def env_prefix(name: str) -> str:
    return name.upper().replace("-", "_")


def count(environ: Mapping[str, str], name: str, default: int = 1) -> int:
    raw = environ.get(f"{env_prefix(name)}_INSTANCES") or environ.get("QUARTET_INSTANCES") or str(default)
    try:
        value = int(raw)
    except ValueError:
        raise SystemExit(f"{env_prefix(name)}_INSTANCES must be a number, not {raw!r}") from None
    if not 1 <= value <= 9:
        raise SystemExit(f"{env_prefix(name)}_INSTANCES must be 1..9 (ports step by {INSTANCE_PORT_STEP})")
    return value


def instance_name(name: str, n: int) -> str:
    return name if n == 1 else f"{name}-{n}"


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


def enabled(environ: Mapping[str, str]) -> list[Service]:
    """The rows of :data:`SERVICES` whose code is on disk (narrowed by ``QUARTET_SERVICES=ping,todos``)."""
    wanted = {n.strip() for n in environ.get("QUARTET_SERVICES", "").split(",") if n.strip()}
    unknown = wanted - {s.name for s in SERVICES}
    if unknown:
        raise SystemExit(f"QUARTET_SERVICES names unknown services: {', '.join(sorted(unknown))}")
    return [s for s in SERVICES if module_exists(s.module) and (not wanted or s.name in wanted)]


@dataclass(frozen=True)
class Plan:
    services: list[Proc]  # HTTP services, every instance
    extras: list[Proc]  # workers, started after their service's migrations
    gateway: Proc | None
    upstreams: dict[str, str]  # gateway env: AUTH_URLS=...


def secrets_file() -> Path:
    return procs.RUN_DIR / SECRETS_FILE_NAME


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=value`` lines (``export``, quotes and ``#`` comments allowed), like the services' dotenv reader."""
    values: dict[str, str] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            key, sep, value = line.strip().removeprefix("export ").partition("=")
            if not sep or not key.strip() or key.lstrip().startswith("#"):
                continue
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                value = value[1:-1]
            else:
                value = value.split(" #", 1)[0].strip()
            values[key.strip()] = value
    return values


def with_env_file(environ: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment over the checkout's ``.env`` (``QUARTET_ENV_FILE`` names another; empty: none).

    The services read the same file themselves; reading it here too lets it set what the
    supervisor decides (instance counts, QUARTET_SERVICES) and the shared settings it hands out.
    """
    chosen = environ.get("QUARTET_ENV_FILE", ".env")
    return {**(read_env_file(ROOT / chosen) if chosen else {}), **environ}


def ensure_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """The suite's secrets: from the caller's environment, else .run/secrets.env (created once, 0600)."""
    path = secrets_file()
    stored = read_env_file(path)
    missing = [name for name in GENERATED if name not in stored]
    if missing:
        for name in missing:
            stored[name] = secrets.token_urlsafe(32)
        path.parent.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            os.fchmod(out.fileno(), 0o600)  # also when the file existed with looser permissions
            out.write("# generated by `make up` (scripts/suite.py) for this checkout; keep private\n")
            out.writelines(f"{name}={value}\n" for name, value in stored.items())
    return {name: environ.get(name) or stored[name] for name in GENERATED}


def broker_passwords(environ: Mapping[str, str]) -> dict[str, str]:
    """service -> its broker password (from ensure_secrets' values merged into ``environ``)."""
    return {service: environ.get(var, "") for service, var in BROKER_PASSWORDS.items()}


def service_amqp_url(service: str, environ: Mapping[str, str]) -> str | None:
    """AMQP_URL with the service's own broker user; None when the caller set AMQP_URL (used as is)."""
    role_name = broker.ROLE_OF.get(service)
    if role_name is None or "AMQP_URL" in environ:
        return None
    where = infra.Endpoint.from_url(SHARED_DEFAULTS["AMQP_URL"], 5672)
    return f"amqp://{broker.ROLES[role_name].user}:{environ.get(BROKER_PASSWORDS[role_name], '')}@{where}/"


def write_definitions(environ: Mapping[str, str]) -> Path:
    """.run/rabbitmq-definitions.json for compose: the service users (hashed passwords), no guest.

    Mode 0644: the broker container runs as another uid. It holds salted hashes of
    random 256-bit passwords only.
    """
    exchange = environ.get("EVENTS_EXCHANGE", SHARED_DEFAULTS["EVENTS_EXCHANGE"])
    data = broker.definitions(broker_passwords(environ), exchange, environ[BROKER_ADMIN_PASSWORD])
    path = procs.RUN_DIR / DEFINITIONS_FILE_NAME
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    path.chmod(0o644)
    return path


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


def plan(environ: Mapping[str, str]) -> Plan:
    """Every process `make up` would run, with its name, module, port and env."""
    shared = {k: environ.get(k, v) for k, v in SHARED_DEFAULTS.items()}
    services: list[Proc] = []
    extras: list[Proc] = []
    upstreams: dict[str, str] = {}
    active = enabled(environ)
    with_database = sum(
        count(environ, svc.name, DEFAULT_INSTANCES)
        + sum(count(environ, e.name) for e in svc.extras if module_exists(e.module))
        for svc in active
        if svc.has_database
    )
    pool = str(db_pool_size(environ, with_database))
    for svc in active:
        base = {**shared, **svc.env, "HOST": "127.0.0.1"}
        own_amqp = service_amqp_url(svc.name, environ)
        if own_amqp is not None:
            base["AMQP_URL"] = own_amqp
        base |= {name: environ[name] for name, users in SECRET_USERS.items() if svc.name in users and name in environ}
        if svc.has_database:
            base["DATABASE_URL"] = database_url(svc, environ)
            base["DB_POOL_MAX"] = pool  # consumers cap their prefetch at it (kit.events.wiring)
        urls = []
        for n in range(1, count(environ, svc.name, DEFAULT_INSTANCES) + 1):
            name = instance_name(svc.name, n)
            port = svc.port + INSTANCE_PORT_STEP * (n - 1)
            services.append(Proc(name, svc.module, port, {**base, "PORT": str(port), "INSTANCE": name}))
            urls.append(f"http://127.0.0.1:{port}")
        upstreams[f"{env_prefix(svc.name)}_URLS"] = ",".join(urls)
        for extra in svc.extras:
            if not module_exists(extra.module):
                continue
            for n in range(1, count(environ, extra.name) + 1):
                name = instance_name(extra.name, n)
                env = {**base, "INSTANCE": name}
                if extra.metrics_port is not None:
                    env["WORKER_METRICS_PORT"] = str(extra.metrics_port + INSTANCE_PORT_STEP * (n - 1))
                extras.append(Proc(name, extra.module, None, env))
    gateway = None
    if module_exists(GATEWAY.module):
        env = {**shared, "HOST": "127.0.0.1", "PORT": str(GATEWAY.port), "INSTANCE": GATEWAY.name, **upstreams}
        gateway = Proc(GATEWAY.name, GATEWAY.module, GATEWAY.port, env)
    return Plan(services, extras, gateway, upstreams)


def resolve(name: str) -> tuple[str, int | None] | None:
    """(module, port) of a process name from the table: ``todos-2`` → services.todos on 8012.

    Workers have no port; a name the table does not know gives None.
    """
    if name == prometheus.NAME:
        return prometheus.NAME, None
    for svc in (*SERVICES, GATEWAY):
        candidates = ((svc.name, svc.module, svc.port), *((e.name, e.module, None) for e in svc.extras))
        for candidate, module, port in candidates:
            suffix = name.removeprefix(candidate)
            if suffix == "":
                return module, port
            if suffix.startswith("-") and suffix[1:].isdigit() and int(suffix[1:]) >= 1:
                return module, None if port is None else port + INSTANCE_PORT_STEP * (int(suffix[1:]) - 1)
    return None


def module_of(name: str) -> str | None:
    found = resolve(name)
    return None if found is None else found[0]


def child_python(environ: Mapping[str, str]) -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return environ.get("QUARTET_PYTHON") or (str(venv) if venv.exists() else sys.executable)


def timeout_from(environ: Mapping[str, str], key: str, default: float) -> float:
    try:
        return float(environ.get(key, default))
    except ValueError:
        raise SystemExit(f"{key} must be a number of seconds") from None


def say(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------- up


def ensure_infra(environ: Mapping[str, str], need_postgres: bool = True) -> None:
    try:
        if need_postgres:
            pg = infra.Endpoint.from_url(pg_admin_url(environ), 5432)
            say(f"==> PostgreSQL on {pg}: {infra.ensure_postgres(pg)}")
        amqp = infra.Endpoint.from_url(environ.get("AMQP_URL", SHARED_DEFAULTS["AMQP_URL"]), 5672)
        say(f"==> RabbitMQ on {amqp}: {infra.ensure_rabbitmq(amqp)}")
    except infra.InfraError as exc:
        raise SystemExit(f"error: {exc}") from None


def provision_broker(environ: Mapping[str, str], active: list[Service]) -> None:
    """One broker user per service, least permissions (rabbitmqctl on the local broker)."""
    if "AMQP_URL" in environ:
        say("==> broker users: skipped (AMQP_URL is yours; see docs/security.md for the users to create)")
        return
    wanted = {s.name for s in active}
    passwords = {k: v for k, v in broker_passwords(environ).items() if k in wanted}
    if not passwords:
        return
    exchange = environ.get("EVENTS_EXCHANGE", SHARED_DEFAULTS["EVENTS_EXCHANGE"])
    try:
        users = broker.provision(passwords, exchange)
    except broker.BrokerAdminError as exc:
        raise SystemExit(
            f"error: could not create the broker users: {exc}. Run `make up` as root on the broker's machine, "
            "or set AMQP_URL (and EVENTS_PRODUCERS) to users you created (docs/security.md)."
        ) from None
    say(f"==> broker users: {', '.join(users)} (passwords in .run/{SECRETS_FILE_NAME})")


def migrate(service: Service, proc: Proc, python: str) -> None:
    import subprocess

    say(f"    migrate {service.name}")
    with procs.log_file(service.name).open("ab") as log:
        log.write(f"\n==== suite runs: python -m {service.module} migrate ====\n".encode())
        log.flush()
        try:
            done = subprocess.run(
                [python, "-m", service.module, "migrate"],
                cwd=ROOT,
                env={**os.environ, **proc.env},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                timeout=120,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise SystemExit(
                f"error: migrating {service.name} took over 120s\n{procs.log_tail(service.name)}"
            ) from None
    if done.returncode != 0:
        raise SystemExit(
            f"error: migrating {service.name} failed (exit {done.returncode}):\n{procs.log_tail(service.name)}"
        )


def start_all(group: list[Proc], python: str, timeout: float) -> None:
    """Start whatever in ``group`` is not running yet, then wait until all are ready."""
    waiting: list[tuple[Proc, int]] = []
    for proc in group:
        pid = procs.running_pid(proc.name, proc.module)
        if pid is not None:
            say(f"    {proc.name:<16} already running (pid {pid})")
        else:
            if proc.port is not None and procs.port_answers("127.0.0.1", proc.port):
                raise SystemExit(
                    f"error: port {proc.port} for {proc.name} is taken by a process this suite did not start "
                    f"(see: ss -ltnp 'sport = :{proc.port}')"
                )
            pid = procs.start(proc, python, os.environ)
            say(f"    {proc.name:<16} started (pid {pid}, log .run/{proc.name}.log)")
        waiting.append((proc, pid))
    try:
        procs.wait_ready(waiting, timeout)
    except procs.NotReady as exc:
        raise SystemExit(
            f"error: {exc.name} {exc.reason}. Last lines of .run/{exc.name}.log:\n"
            f"{procs.log_tail(exc.name)}\n(`make logs` shows more; `make down` stops the suite)"
        ) from None


def cmd_up(environ: Mapping[str, str]) -> int:
    RUN_DIR.mkdir(exist_ok=True)
    environ = {**environ, **ensure_secrets(environ)}
    the_plan = plan(environ)
    python = child_python(environ)
    timeout = timeout_from(environ, "QUARTET_READY_TIMEOUT", 60.0)
    active = enabled(environ)
    if not active and the_plan.gateway is None:
        raise SystemExit("error: no service of the table is on disk yet")
    coming = [s.name for s in SERVICES if not module_exists(s.module)]
    skipped = [s.name for s in SERVICES if module_exists(s.module) and s not in active]
    say(
        f"==> suite: {', '.join(s.name for s in active) or '-'}"
        + (f"; coming: {', '.join(coming)}" if coming else "")
        + (f"; left out by QUARTET_SERVICES: {', '.join(skipped)}" if skipped else "")
    )

    ensure_infra(environ, need_postgres=any(s.has_database for s in active))
    provision_broker(environ, active)

    db_services = [s for s in active if s.has_database]
    if db_services:
        say("==> databases and migrations")
        specs = [
            database_spec(s, environ) for s in db_services if not environ.get(f"{env_prefix(s.name)}_DATABASE_URL")
        ]
        try:
            created = infra.provision_databases(pg_admin_url(environ), specs)
        except infra.InfraError as exc:
            raise SystemExit(f"error: {exc}") from None
        say(f"    created {', '.join(created)}" if created else "    roles and databases exist")
        for svc in db_services:
            first = next(p for p in the_plan.services if p.module == svc.module)
            migrate(svc, first, python)

    say("==> services")
    start_all(the_plan.services + the_plan.extras, python, timeout)

    if the_plan.gateway is not None:
        say("==> gateway")
        restart_gateway_if_upstreams_changed(the_plan)
        start_all([the_plan.gateway], python, timeout)
        GATEWAY_UPSTREAMS_FILE.write_text(json.dumps(the_plan.upstreams, sort_keys=True))

    start_prometheus(the_plan, environ)

    strays = [n for n in procs.recorded_names() if n not in {p.name for p in all_procs(the_plan)} | {prometheus.NAME}]
    for name in strays:
        say(f"    note: {name} runs but is not in this plan (fewer instances?); `make down` stops it")
    say("")
    print_urls(the_plan)
    return 0


def start_prometheus(the_plan: Plan, environ: Mapping[str, str]) -> None:
    """Prometheus scraping every process of the plan, when Debian's ``prometheus`` is installed."""
    program = prometheus.binary()
    if program is None:
        say("==> prometheus: not installed (`make bootstrap` installs it); no metrics server")
        return
    say("==> prometheus")
    config = prometheus.write_config(all_procs(the_plan))
    pid = procs.running_pid(prometheus.NAME, prometheus.NAME)
    listen = prometheus.port(environ)
    if pid is not None:
        reloaded = prometheus.reload(listen)
        say(f"    {prometheus.NAME:<16} already running (pid {pid}); config {'reloaded' if reloaded else 'written'}")
        return
    argv = tuple(prometheus.command(config, listen, program))
    start_all([Proc(prometheus.NAME, prometheus.NAME, None, {}, argv)], sys.executable, 30.0)


def all_procs(the_plan: Plan) -> list[Proc]:
    return the_plan.services + the_plan.extras + ([the_plan.gateway] if the_plan.gateway else [])


def restart_gateway_if_upstreams_changed(the_plan: Plan) -> None:
    # The gateway reads its upstream lists once at start; a new instance count needs a new gateway.
    gateway = the_plan.gateway
    if gateway is None or procs.running_pid(gateway.name, gateway.module) is None:
        return
    try:
        before = json.loads(GATEWAY_UPSTREAMS_FILE.read_text())
    except (OSError, ValueError):
        before = None
    if before != the_plan.upstreams:
        say("    upstreams changed: restarting the gateway")
        stop_names([gateway.name], environ=os.environ)


def print_urls(the_plan: Plan) -> None:
    width = max([9, *(len(p.name) + 1 for p in all_procs(the_plan))])
    say("Quartet is up:")
    if the_plan.gateway is not None:
        say(f"  {'app':<{width}} http://localhost:8080/app/")
        if procs.http_ready(GATEWAY.port, "/docs"):
            say(f"  {'API docs':<{width}} http://localhost:8080/docs   (OpenAPI: http://localhost:8080/openapi.json)")
        else:
            say(f"  {'API docs':<{width}} per service for now (merged docs at http://localhost:8080/docs are coming)")
        say(f"  {'try':<{width}} curl 'http://localhost:8080/ping?ECHOMSG=hi'")
        say(f"  {'metrics':<{width}} http://127.0.0.1:9080/metrics   (gateway; loopback only, not the public port)")
    for proc in the_plan.services:
        say(f"  {proc.name:<{width}} http://localhost:{proc.port}   (docs: /docs, health: /healthz /readyz, /metrics)")
    for proc in the_plan.extras:
        metrics = proc.env.get("WORKER_METRICS_PORT")
        where = f"metrics http://localhost:{metrics}/metrics" if metrics else "no port"
        say(f"  {proc.name:<{width}} worker, {where} (log .run/{proc.name}.log)")
    if procs.running_pid(prometheus.NAME, prometheus.NAME, forget_stale=False) is not None:
        listen = prometheus.port(os.environ)
        say(f"  {'prometheus':<{width}} http://localhost:{listen}/graph   (rules: deploy/prometheus/rules.yml)")
    coming = [s.name for s in SERVICES if not module_exists(s.module)]
    if coming:
        say(f"  {'coming':<{width}} {', '.join(coming)} (not built yet)")
    say("Stop with `make down`; `make ps` and `make logs` show what runs.")


# ------------------------------------------------------------------------- down


def stop_names(names: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    targets: list[tuple[str, int]] = []
    outcome: dict[str, str] = {}
    for name in names:
        module = module_of(name)
        pid = procs.read_pid(name)
        if module is None or pid is None or not procs.is_ours(pid, module):
            # Stale: the pid is gone or now belongs to someone else. Never signal it.
            procs.pid_file(name).unlink(missing_ok=True)
            if pid is not None and not procs.alive(pid):
                outcome[name] = "had exited; pid file removed"
            else:
                outcome[name] = "stale pid file removed (pid not ours, not signalled)"
            continue
        targets.append((name, pid))
    outcome.update(procs.stop(targets, timeout_from(environ, "QUARTET_STOP_TIMEOUT", 30.0)))
    return outcome


def cmd_down(environ: Mapping[str, str]) -> int:
    names = procs.recorded_names()
    if not names:
        say("==> nothing of the local suite runs")
        return 0
    # The gateway first, so nothing new reaches a service that is draining.
    first = [n for n in names if module_of(n) == GATEWAY.module]
    rest = [n for n in names if n not in first]
    outcome = stop_names(first, environ)
    outcome.update(stop_names(rest, environ))
    for name in first + rest:
        say(f"    {name:<16} {outcome.get(name, '?')}")
    GATEWAY_UPSTREAMS_FILE.unlink(missing_ok=True)
    say("==> suite stopped (PostgreSQL and RabbitMQ keep running)")
    return 0


# ---------------------------------------------------------------------- restart

# After an instance is ready again, the gateway's next health check (every 2 s) must see it
# before the next instance drains, or both would be out of rotation at once.
REJOIN_SECONDS = 3.0


def restart_order(the_plan: Plan, names: list[str]) -> list[Proc]:
    """The processes of the named services (every instance, then workers); all but the gateway when empty."""
    known = {s.name for s in (*SERVICES, GATEWAY)}
    unknown = set(names) - known
    if unknown:
        raise SystemExit(f"unknown service: {', '.join(sorted(unknown))} (one of: {', '.join(sorted(known))})")
    wanted = set(names) or {s.name for s in SERVICES}
    chosen: list[Proc] = []
    for svc in SERVICES:
        if svc.name in wanted:
            workers = {e.name for e in svc.extras}
            chosen += [p for p in the_plan.services if base_name(p.name) == svc.name]
            chosen += [p for p in the_plan.extras if base_name(p.name) in workers]
    if the_plan.gateway is not None and GATEWAY.name in wanted:
        chosen.append(the_plan.gateway)
    return chosen


def base_name(name: str) -> str:
    head, sep, tail = name.rpartition("-")
    return head if sep and tail.isdigit() else name


def roll(
    order: list[Proc], python: str, timeout: float, environ: Mapping[str, str], skip_rejoin: Proc | None = None
) -> None:
    """Stop (drained), start and wait for each process of ``order`` in turn."""
    for proc in order:
        if procs.running_pid(proc.name, proc.module) is not None:
            outcome = stop_names([proc.name], environ)[proc.name]
            say(f"    {proc.name:<16} drained and {outcome}")
        start_all([proc], python, timeout)
        if proc.port is not None and proc is not skip_rejoin:
            time.sleep(REJOIN_SECONDS)


def cmd_restart(environ: Mapping[str, str], names: list[str]) -> int:
    """Rolling restart: one process at a time, each drained, restarted and ready before the next.

    SIGTERM makes an instance answer /readyz 503 for DRAIN_DELAY_SECONDS while it still
    serves; the gateway's health checks stop sending to it, in-flight requests finish, it
    exits; the new one starts and is ready, and the gateway has seen it before the next
    instance drains. The gateway itself is one process: restarting it drops its connections.
    """
    environ = {**environ, **ensure_secrets(environ)}
    the_plan = plan(environ)
    python = child_python(environ)
    timeout = timeout_from(environ, "QUARTET_READY_TIMEOUT", 60.0)
    order = restart_order(the_plan, names)
    say(f"==> rolling restart: {', '.join(p.name for p in order)}")
    roll(order, python, timeout, environ, skip_rejoin=the_plan.gateway)
    if the_plan.gateway is not None and the_plan.gateway in order:
        GATEWAY_UPSTREAMS_FILE.write_text(json.dumps(the_plan.upstreams, sort_keys=True))
    say("==> restarted")
    return 0


# --------------------------------------------------------------------- ps, logs


def process_state(name: str, module: str | None, port: int | None) -> tuple[str, str]:
    """(pid, state) of one process, for `ps`; changes nothing on disk."""
    recorded = procs.read_pid(name)
    pid = procs.running_pid(name, module, forget_stale=False) if module else None
    if pid is None:
        if recorded is None:
            return "-", "stopped"
        return "-", "exited (see its log)" if not procs.alive(recorded) else "stale pid file (another program)"
    if port is None:
        return str(pid), "running"
    return str(pid), "ready" if procs.http_ready(port) else "not ready"


def cmd_ps(environ: Mapping[str, str]) -> int:
    the_plan = plan(environ)
    rows: list[tuple[str, str, str, str]] = []
    planned = {p.name for p in all_procs(the_plan)}
    for proc in all_procs(the_plan):
        pid, state = process_state(proc.name, proc.module, proc.port)
        rows.append((proc.name, pid, "-" if proc.port is None else str(proc.port), state))
    for name in procs.recorded_names():
        if name not in planned:
            module, port = resolve(name) or (None, None)
            pid, state = process_state(name, module, port)
            rows.append((name, pid, "-" if port is None else str(port), f"{state} (not in this plan)"))
    for svc in (*SERVICES, GATEWAY):
        if not module_exists(svc.module):
            rows.append((svc.name, "-", str(svc.port), "coming (not built yet)"))
    print(f"{'NAME':<16} {'PID':>7}  {'PORT':<5}  STATE")
    for name, pid, port_text, state in rows:
        print(f"{name:<16} {pid:>7}  {port_text:<5}  {state}")
    pg = infra.Endpoint.from_url(pg_admin_url(environ), 5432)
    amqp = infra.Endpoint.from_url(environ.get("AMQP_URL", SHARED_DEFAULTS["AMQP_URL"]), 5672)
    for label, ep in (("postgresql", pg), ("rabbitmq", amqp)):
        answering = procs.port_answers(ep.host, ep.port)
        print(f"{label:<16} {'':>7}  {ep.port:<5}  {'answering' if answering else 'NOT answering'} (not managed)")
    return 0


def cmd_logs(names: list[str], lines: int, follow: bool) -> int:
    names = names or [p.stem for p in sorted(RUN_DIR.glob("*.log"))]
    argv = procs.tail_command(names, lines, follow)
    if argv is None:
        say("no logs in .run/ yet")
        return 0
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="suite", description="Run the Quartet suite as local processes.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start PostgreSQL/RabbitMQ if needed, databases, migrations, every service, the gateway")
    sub.add_parser("down", help="stop exactly the processes `up` started")
    sub.add_parser("ps", help="each process, its pid, port and readiness")
    logs = sub.add_parser("logs", help="tail .run/*.log")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("-n", "--lines", type=int, default=40)
    logs.add_argument("names", nargs="*")
    sub.add_parser("infra", help="make sure PostgreSQL and RabbitMQ answer (start the local servers if not)")
    restart = sub.add_parser("restart", help="rolling restart, one drained instance at a time (all but the gateway)")
    restart.add_argument("names", nargs="*")
    sub.add_parser("urls", help="print the URLs of the suite")
    sub.add_parser(
        "k8s-local-secrets",
        help="create/complete deploy/k8s/overlays/local/secrets.env and rabbitmq-definitions.json",
    )
    sub.add_parser(
        "secrets",
        help="create .run/secrets.env if missing, write .run/rabbitmq-definitions.json, print the env file's path",
    )
    args = parser.parse_args(argv)
    environ = with_env_file(os.environ)
    if args.command == "up":
        return cmd_up(environ)
    if args.command == "down":
        return cmd_down(environ)
    if args.command == "ps":
        return cmd_ps(environ)
    if args.command == "restart":
        return cmd_restart(environ, args.names)
    if args.command == "logs":
        return cmd_logs(args.names, args.lines, args.follow)
    if args.command == "infra":
        ensure_infra(environ)
        return 0
    if args.command == "k8s-local-secrets":
        exchange = environ.get("EVENTS_EXCHANGE", SHARED_DEFAULTS["EVENTS_EXCHANGE"])
        for path in broker.write_k8s_local(ROOT / "deploy" / "k8s" / "overlays" / "local", exchange):
            print(path)
        return 0
    if args.command == "secrets":
        write_definitions({**environ, **ensure_secrets(environ)})
        print(secrets_file())
        return 0
    print_urls(plan(environ))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # `make ps | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
