"""``make up``: plan → provision → start → report.

1. **plan**: every process from the table and the environment (scripts/suite/plan.py);
2. **provision**: PostgreSQL and RabbitMQ answer, each service has its broker user,
   its role and database, and is migrated;
3. **start**: the services and their workers, then the gateway in front, then Prometheus;
   whatever already runs is left running, so ``up`` is idempotent;
4. **report**: the URLs of what runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping

from scripts.suite import broker, infra, procs, prometheus, secrets
from scripts.suite.control import GATEWAY_UPSTREAMS_FILE, child_python, say, start_all, stop_names, timeout_from
from scripts.suite.plan import Plan, database_spec, pg_admin_url, plan
from scripts.suite.procs import ROOT, RUN_DIR, Proc
from scripts.suite.table import GATEWAY, SERVICES, SHARED_DEFAULTS, Service, env_prefix


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
    try:
        users = broker.provision(passwords, secrets.events_exchange(environ))
    except broker.BrokerAdminError as exc:
        raise SystemExit(
            f"error: could not create the broker users: {exc}. Run `make up` as root on the broker's machine, "
            "or set AMQP_URL (and EVENTS_PRODUCERS) to users you created (docs/security.md)."
        ) from None
    say(f"==> broker users: {', '.join(users)} (passwords in .run/{secrets.SECRETS_FILE_NAME})")


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
    """The services and their workers, the gateway in front of them, Prometheus scraping them all."""
    python = child_python(environ)
    timeout = timeout_from(environ, "QUARTET_READY_TIMEOUT", 60.0)
    say("==> services")
    start_all(the_plan.services + the_plan.extras, python, timeout)
    say("==> gateway")
    restart_gateway_if_upstreams_changed(the_plan)
    start_all([the_plan.gateway], python, timeout)
    GATEWAY_UPSTREAMS_FILE.write_text(json.dumps(the_plan.upstreams, sort_keys=True))
    start_prometheus(the_plan, environ)
    planned = {p.name for p in the_plan.all_procs()} | {prometheus.NAME}
    for name in procs.recorded_names():
        if name not in planned:
            say(f"    note: {name} runs but is not in this plan (fewer instances?); `make down` stops it")


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


def start_prometheus(the_plan: Plan, environ: Mapping[str, str]) -> None:
    """Prometheus scraping every process of the plan, when Debian's ``prometheus`` is installed."""
    program = prometheus.binary()
    if program is None:
        say("==> prometheus: not installed (`make bootstrap` installs it); no metrics server")
        return
    say("==> prometheus")
    config = prometheus.write_config(the_plan.all_procs())
    pid = procs.running_pid(prometheus.NAME, prometheus.NAME)
    listen = prometheus.port(environ)
    if pid is not None:
        reloaded = prometheus.reload(listen)
        say(f"    {prometheus.NAME:<16} already running (pid {pid}); config {'reloaded' if reloaded else 'written'}")
        return
    argv = tuple(prometheus.command(config, listen, program))
    start_all([Proc(prometheus.NAME, prometheus.NAME, None, {}, argv)], sys.executable, 30.0)


# ----------------------------------------------------------------------- report


def report(the_plan: Plan) -> None:
    """Where everything of the plan answers."""
    width = max([9, *(len(p.name) + 1 for p in the_plan.all_procs())])
    gateway = f"http://localhost:{GATEWAY.port}"
    say("Quartet is up:")
    say(f"  {'app':<{width}} {gateway}/app/")
    say(f"  {'API docs':<{width}} {gateway}/docs   (OpenAPI: {gateway}/openapi.json)")
    say(f"  {'try':<{width}} curl '{gateway}/ping?ECHOMSG=hi'")
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
    say("Stop with `make down`; `make ps` and `make logs` show what runs.")
