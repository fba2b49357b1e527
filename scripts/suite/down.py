"""``make down`` and ``make restart``: processes stopped drained, the gateway first.

SIGTERM makes an instance answer /readyz 503 for DRAIN_DELAY_SECONDS while it still
serves; the gateway's health checks stop sending to it, in-flight requests finish, it
exits. ``down`` stops the gateway first, so nothing new reaches a service that drains.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from scripts.suite import procs, secrets
from scripts.suite.control import (
    GATEWAY_UPSTREAMS_FILE,
    child_python,
    module_of,
    say,
    start_all,
    stop_names,
    timeout_from,
)
from scripts.suite.plan import plan, restart_order
from scripts.suite.procs import Proc
from scripts.suite.table import GATEWAY

# After an instance is ready again, the gateway's next health check (every 2 s) must see it
# before the next instance drains, or both would be out of rotation at once.
REJOIN_SECONDS = 3.0


def cmd_down(environ: Mapping[str, str]) -> int:
    names = procs.recorded_names()
    if not names:
        say("==> nothing of the local suite runs")
        return 0
    first = [n for n in names if module_of(n) == GATEWAY.module]
    rest = [n for n in names if n not in first]
    outcome = stop_names(first, environ)
    outcome.update(stop_names(rest, environ))
    for name in first + rest:
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
