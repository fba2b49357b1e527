"""``make down`` and ``make restart``: processes stopped drained, the gateway first.

SIGTERM makes an instance answer /readyz 503 for DRAIN_DELAY_SECONDS while it still
serves; the gateway's health checks stop sending to it, in-flight requests finish, it
exits. ``down`` stops the gateway first, so nothing new reaches a service that drains.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from scripts.suite import broker, checkout, infra, procs, secrets, supervise
from scripts.suite.control import (
    GATEWAY_UPSTREAMS_FILE,
    child_python,
    module_of,
    say,
    start_all,
    stop_names,
    timeout_from,
)
from scripts.suite.plan import database_spec, pg_admin_url, plan, restart_order
from scripts.suite.procs import Proc
from scripts.suite.table import GATEWAY, SERVICES

# After an instance is ready again, the gateway's next health check (every 2 s) must see it
# before the next instance drains, or both would be out of rotation at once.
REJOIN_SECONDS = 3.0


def cmd_down(environ: Mapping[str, str]) -> int:
    names = procs.recorded_names()
    supervise.plan_file().unlink(missing_ok=True)
    supervise.state_file().unlink(missing_ok=True)
    if not names:
        say("==> nothing of the local suite runs")
        return 0
    # The supervisor first (nothing is brought back), then the gateway (nothing new reaches a
    # service that drains), then the rest together.
    supervisor = [n for n in names if n == supervise.NAME]
    first = [n for n in names if module_of(n) == GATEWAY.module]
    rest = [n for n in names if n not in first and n not in supervisor]
    outcome = stop_names(supervisor, environ)
    outcome.update(stop_names(first, environ))
    outcome.update(stop_names(rest, environ))
    for name in supervisor + first + rest:
        say(f"    {name:<16} {outcome.get(name, '?')}")
    GATEWAY_UPSTREAMS_FILE.unlink(missing_ok=True)
    say("==> suite stopped (PostgreSQL and RabbitMQ keep running)")
    return 0


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

    The new instance is ready, and the gateway has seen it, before the next one drains.
    The gateway itself is one process: restarting it drops its connections.
    """
    environ = secrets.with_secrets(environ)
    the_plan = plan(environ)
    order = restart_order(the_plan, names)
    say(f"==> rolling restart: {', '.join(p.name for p in order)}")
    timeout = timeout_from(environ, "QUARTET_READY_TIMEOUT", 60.0)
    roll(order, child_python(environ), timeout, environ, skip_rejoin=the_plan.gateway)
    if the_plan.gateway in order:
        GATEWAY_UPSTREAMS_FILE.write_text(json.dumps(the_plan.upstreams, sort_keys=True))
    say("==> restarted")
    return 0


def cmd_forget(environ: Mapping[str, str]) -> int:
    """Drop this checkout's databases and roles, its broker vhost and users (checkout.py names them).

    For a checkout about to be deleted, and for tests that ran ``up`` in a copy of the
    checkout. Nothing may run; the next ``make up`` creates everything again.
    """
    running = [n for n in procs.recorded_names() if procs.running_pid(n, module_of(n) or "", forget_stale=False)]
    if running:
        raise SystemExit(f"error: {', '.join(running)} still run: `make down` first")
    specs = [database_spec(s, environ) for s in SERVICES if s.has_database]
    try:
        dropped = infra.drop_databases(pg_admin_url(environ), [spec.name for spec in specs])
    except infra.InfraError as exc:
        raise SystemExit(f"error: {exc}") from None
    users = [checkout.broker_user(role.user, environ) for role in broker.ROLES.values()]
    try:
        dropped += broker.forget(users, checkout.vhost(environ))
    except broker.BrokerAdminError as exc:
        raise SystemExit(f"error: {exc}") from None
    say(f"==> forgot {', '.join(dropped)}" if dropped else "==> nothing of this checkout to forget")
    return 0
