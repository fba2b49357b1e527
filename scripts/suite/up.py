"""``make up``: plan → provision → start → report.

1. **plan**: every process from the table and the environment (scripts/suite/plan.py);
2. **provision**: PostgreSQL and RabbitMQ answer, each service has its broker user,
   its role and database, and is migrated;
3. **start**: the services and their workers, then the gateway in front, then Prometheus;
   whatever already runs is left running, so ``up`` is idempotent; then the supervisor
   (supervise.py), which restarts what crashes;
4. **report**: the URLs of what runs.

Names of databases, roles, the broker vhost and users are this checkout's own
(checkout.py); a re-clone's new ``SIGNING_KEK`` is handled by :func:`recover_signing_keys`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from urllib.parse import urlsplit

from scripts.suite import broker, checkout, infra, procs, prometheus, secrets, supervise
from scripts.suite.control import GATEWAY_UPSTREAMS_FILE, child_python, say, start_all, stop_names, timeout_from
from scripts.suite.plan import Plan, database_spec, pg_admin_url, plan
from scripts.suite.procs import ROOT, RUN_DIR, Proc
from scripts.suite.table import SERVICES, SHARED_DEFAULTS, Service, env_prefix


def cmd_up(environ: Mapping[str, str]) -> int:
    RUN_DIR.mkdir(exist_ok=True)
    environ = secrets.with_secrets(environ)
    the_plan = plan(environ)
    left_out = [s.name for s in SERVICES if s not in the_plan.chosen]
    say(
        f"==> suite: {', '.join(s.name for s in the_plan.chosen)}"
        + (f"; left out by QUARTET_SERVICES: {', '.join(left_out)}" if left_out else "")
    )
    provision(the_plan, environ)
    start(the_plan, environ)
    say("")
    report(the_plan)
    return 0


# -------------------------------------------------------------------- provision


def provision(the_plan: Plan, environ: Mapping[str, str]) -> None:
    """PostgreSQL and RabbitMQ answer; broker users, roles and databases exist; every database is migrated."""
    with_database = [s for s in the_plan.chosen if s.has_database]
    ensure_infra(environ, need_postgres=bool(with_database))
    provision_broker(environ, the_plan.chosen)
    if not with_database:
        return
    say("==> databases and migrations")
    own = [database_spec(s, environ) for s in with_database if not environ.get(f"{env_prefix(s.name)}_DATABASE_URL")]
    try:
        created = infra.provision_databases(pg_admin_url(environ), own)
    except infra.InfraError as exc:
        raise SystemExit(f"error: {exc}") from None
    say(f"    created {', '.join(created)}" if created else "    roles and databases exist")
    python = child_python(environ)
    for svc in with_database:
        first = next(p for p in the_plan.services if p.module == svc.module)
        migrate(svc, first, python)
        if svc.name == "auth" and not environ.get("AUTH_DATABASE_URL"):
            recover_signing_keys(database_spec(svc, environ).name, environ)


def ensure_infra(environ: Mapping[str, str], need_postgres: bool = True) -> None:
    try:
        if need_postgres:
            pg = infra.Endpoint.from_url(pg_admin_url(environ), 5432)
            say(f"==> PostgreSQL on {pg}: {infra.ensure_postgres(pg)}")
        amqp = infra.Endpoint.from_url(environ.get("AMQP_URL", SHARED_DEFAULTS["AMQP_URL"]), 5672)
        say(f"==> RabbitMQ on {amqp}: {infra.ensure_rabbitmq(amqp)}")
        todos = next((s for s in SERVICES if s.name == "todos"), None)
        cache_url = environ.get("CACHE_REDIS_URL") or (todos.env.get("CACHE_REDIS_URL") if todos else None)
        if cache_url:
            cache = infra.Endpoint.from_url(cache_url, 6379)
            say(f"==> Redis on {cache}: {infra.ensure_redis(cache)}")
    except infra.InfraError as exc:
        raise SystemExit(f"error: {exc}") from None


def provision_broker(environ: Mapping[str, str], chosen: list[Service]) -> None:
    """One broker user per service, least permissions (rabbitmqctl on the local broker)."""
    if "AMQP_URL" in environ:
        say("==> broker users: skipped (AMQP_URL is yours; see docs/security.md for the users to create)")
        return
    wanted = {s.name for s in chosen}
    passwords = {k: v for k, v in secrets.broker_passwords(environ).items() if k in wanted}
    if not passwords:
        return
    vhost = checkout.vhost(environ)
    try:
        users = broker.provision(
            passwords, secrets.events_exchange(environ), vhost, lambda user: checkout.broker_user(user, environ)
        )
    except broker.BrokerAdminError as exc:
        raise SystemExit(
            f"error: could not create the broker users: {exc}. Run `make up` as root on the broker's machine, "
            "or set AMQP_URL (and EVENTS_PRODUCERS) to users you created (docs/security.md)."
        ) from None
    say(f"==> broker vhost {vhost}, users {', '.join(users)} (passwords in .run/{secrets.SECRETS_FILE_NAME})")


def recover_signing_keys(database: str, environ: Mapping[str, str]) -> None:
    """Local only: remove auth's signing keys sealed with a KEK this checkout does not hold.

    This checkout's database names come from its path; a re-clone at the same path (or a
    removed ``.run/``) finds the keys an earlier checkout sealed with a ``SIGNING_KEK``
    that went with its ``.run/secrets.env``. Nothing can open them again, and auth would
    refuse to start: drop them (auth makes a new key at start; tokens they signed are
    refused) and say so in one line.
    """
    import asyncio

    import asyncpg

    from services.auth.sealing import KeyEncryptionKeys

    held = KeyEncryptionKeys.from_setting(environ[secrets.SIGNING_KEK])
    admin = urlsplit(pg_admin_url(environ))._replace(path=f"/{database}").geturl()

    async def drop_unopenable() -> list[str]:
        conn = await asyncpg.connect(admin, timeout=10)
        try:
            rows = await conn.fetch("SELECT kid, kek_id FROM signing_keys WHERE kek_id IS NOT NULL")
            lost = [r["kid"] for r in rows if not held.knows(r["kek_id"])]
            if lost:
                await conn.execute("DELETE FROM signing_keys WHERE kid = ANY($1::text[])", lost)
            return lost
        finally:
            await conn.close()

    try:
        lost = asyncio.run(asyncio.wait_for(drop_unopenable(), timeout=30))
    except Exception as exc:
        raise SystemExit(f"error: could not check auth's signing keys in {database}: {exc!r}") from None
    if lost:
        say(
            f"    auth: {len(lost)} signing key(s) in {database} were sealed with a SIGNING_KEK this checkout "
            f"does not hold (an earlier checkout here; .run/secrets.env is new): removed, auth makes a new one"
        )


def migrate(service: Service, proc: Proc, python: str) -> None:
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


# ------------------------------------------------------------------------ start


def start(the_plan: Plan, environ: Mapping[str, str]) -> None:
    """The services and their workers, the gateway in front of them, Prometheus scraping them all,
    and the supervisor watching them."""
    python = child_python(environ)
    timeout = timeout_from(environ, "QUARTET_READY_TIMEOUT", 60.0)
    say("==> services")
    start_all(the_plan.services + the_plan.extras, python, timeout)
    say("==> gateway")
    restart_gateway_if_upstreams_changed(the_plan)
    start_all([the_plan.gateway], python, timeout)
    GATEWAY_UPSTREAMS_FILE.write_text(json.dumps(the_plan.upstreams, sort_keys=True))
    start_prometheus(the_plan)
    planned = {p.name for p in the_plan.all_procs()} | {supervise.NAME}
    for name in procs.recorded_names():
        if name not in planned:
            say(f"    note: {name} runs but is not in this plan (fewer instances?); `make down` stops it")
    supervise.write_plan(the_plan.all_procs(), python)
    pid, started = supervise.ensure_running(python, os.environ)
    say(
        f"==> supervisor {'started' if started else 'already running'} (pid {pid}, log .run/supervisor.log): "
        f"restarts what crashes, gives up after {supervise.MAX_CRASHES} crashes in "
        f"{supervise.WINDOW_SECONDS:.0f} s"
    )


def restart_gateway_if_upstreams_changed(the_plan: Plan) -> None:
    # The gateway reads its upstream lists once at start; a new instance count needs a new gateway.
    gateway = the_plan.gateway
    if procs.running_pid(gateway.name, gateway.module) is None:
        return
    try:
        before = json.loads(GATEWAY_UPSTREAMS_FILE.read_text())
    except (OSError, ValueError):
        before = None
    if before != the_plan.upstreams:
        say("    upstreams changed: restarting the gateway")
        stop_names([gateway.name], environ=os.environ)


def start_prometheus(the_plan: Plan) -> None:
    """Prometheus scraping every process of the plan, when Debian's ``prometheus`` is installed."""
    proc = the_plan.prometheus
    if proc is None:
        say("==> prometheus: not installed (`make bootstrap` installs it) or QUARTET_PROMETHEUS=0; no metrics server")
        return
    say("==> prometheus")
    prometheus.write_config(the_plan.all_procs())
    pid = procs.running_pid(proc.name, proc.module)
    if pid is not None:
        reloaded = prometheus.reload(proc.port or prometheus.DEFAULT_PORT)
        say(f"    {proc.name:<16} already running (pid {pid}); config {'reloaded' if reloaded else 'written'}")
        return
    start_all([proc], child_python(os.environ), 30.0)


# ----------------------------------------------------------------------- report


def report(the_plan: Plan) -> None:
    """Where everything of the plan answers."""
    width = max([9, *(len(p.name) + 1 for p in the_plan.all_procs())])
    gateway = f"http://localhost:{the_plan.gateway.port}"
    say("Quartet is up:")
    say(f"  {'app':<{width}} {gateway}/app/")
    say(f"  {'API docs':<{width}} {gateway}/docs   (OpenAPI: {gateway}/openapi.json)")
    say(f"  {'try':<{width}} curl '{gateway}/ping?ECHOMSG=hi'")
    say(
        f"  {'metrics':<{width}} http://127.0.0.1:{the_plan.gateway_metrics_port}/metrics   "
        "(gateway; loopback only, not the public port)"
    )
    for proc in the_plan.services:
        say(f"  {proc.name:<{width}} http://localhost:{proc.port}   (docs: /docs, health: /healthz /readyz, /metrics)")
    for proc in the_plan.extras:
        metrics = proc.env.get("WORKER_METRICS_PORT")
        where = f"metrics http://localhost:{metrics}/metrics" if metrics else "no port"
        say(f"  {proc.name:<{width}} worker, {where} (log .run/{proc.name}.log)")
    if the_plan.prometheus is not None:
        prom = the_plan.prometheus
        if procs.running_pid(prom.name, prom.module, forget_stale=False) is not None:
            say(f"  {'prometheus':<{width}} http://localhost:{prom.port}/graph   (rules: deploy/prometheus/rules.yml)")
    say("Stop with `make down`; `make ps` and `make logs` show what runs.")
