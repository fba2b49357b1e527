"""The command line of the local supervisor (``python -m scripts.suite``; see the package docstring).

python -m scripts.suite up | down | restart [SERVICE...] | ps | logs [-f] [-n N] [NAME...] | infra | urls
                        | supervise | forget
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping

from scripts.suite import broker, infra, procs, supervise
from scripts.suite.control import resolve
from scripts.suite.down import cmd_down, cmd_forget, cmd_restart
from scripts.suite.plan import (
    pg_admin_url,
    plan,
)
from scripts.suite.procs import ROOT, RUN_DIR
from scripts.suite.secrets import (
    events_exchange,
    secrets_file,
    with_env_file,
    with_secrets,
    write_definitions,
)
from scripts.suite.table import SHARED_DEFAULTS
from scripts.suite.up import cmd_up, ensure_infra, report

PS_LOG_LINES = 12


def process_state(name: str, module: str | None, port: int | None, ready_path: str = "/readyz") -> tuple[str, str]:
    """(pid, state) of one process, for `ps`; changes nothing on disk."""
    recorded = procs.read_pid(name)
    pid = procs.running_pid(name, module, forget_stale=False) if module else None
    if pid is None:
        if recorded is None:
            return "-", "stopped"
        return "-", "exited (see its log)" if not procs.alive(recorded) else "stale pid file (another program)"
    if port is None:
        return str(pid), "running"
    return str(pid), "ready" if procs.http_ready(port, ready_path) else "not ready"


def supervised_state(name: str, state: str, watched: Mapping[str, object] | None) -> str:
    """``state`` with what the supervisor says of ``name`` (restarting, gave up)."""
    if not watched:
        return state
    last = watched.get("last_exit")
    if watched.get("state") == "gave up" and state in {"stopped", "exited (see its log)"}:
        return (
            f"GAVE UP after {watched.get('crashes_in_window')} crashes within {supervise.WINDOW_SECONDS:.0f} s "
            f"(last: {last}); `make up` starts it again"
        )
    if watched.get("state") == "restarting":
        return f"crashed ({last}), restarting"
    return state


def cmd_ps(environ: Mapping[str, str]) -> int:
    """Each process of the running plan (.run/plan.json; else the plan of this environment)."""
    stored = supervise.read_plan()
    planned = stored[0] if stored else plan(environ).all_procs()
    watched = supervise.read_state()
    rows: list[tuple[str, str, str, str, str]] = []
    gave_up: list[str] = []
    names = {p.name for p in planned}
    for proc in planned:
        pid, state = process_state(proc.name, proc.module, proc.port, proc.ready_path)
        entry = watched.get(proc.name)
        state = supervised_state(proc.name, state, entry)
        if state.startswith("GAVE UP"):
            gave_up.append(proc.name)
        restarts = str(entry.get("restarts", 0)) if entry else "-"
        rows.append((proc.name, pid, "-" if proc.port is None else str(proc.port), restarts, state))
    for name in procs.recorded_names():
        if name not in names and name != supervise.NAME:
            module, port = resolve(name) or (None, None)
            pid, state = process_state(name, module, port)
            rows.append((name, pid, "-" if port is None else str(port), "-", f"{state} (not in this plan)"))
    pid, state = process_state(supervise.NAME, supervise.MODULE, None)
    if pid == "-":
        state = f"{state}: nothing restarts a crashed process (`make up` starts it)"
    rows.append((supervise.NAME, pid, "-", "-", state))
    print(f"{'NAME':<16} {'PID':>7}  {'PORT':<5}  {'RESTARTS':>8}  STATE")
    for name, pid, port_text, restarts, state in rows:
        print(f"{name:<16} {pid:>7}  {port_text:<5}  {restarts:>8}  {state}")
    pg = infra.Endpoint.from_url(pg_admin_url(environ), 5432)
    amqp = infra.Endpoint.from_url(environ.get("AMQP_URL", SHARED_DEFAULTS["AMQP_URL"]), 5672)
    for label, ep in (("postgresql", pg), ("rabbitmq", amqp)):
        answering = procs.port_answers(ep.host, ep.port)
        print(
            f"{label:<16} {'':>7}  {ep.port:<5}  {'':>8}  {'answering' if answering else 'NOT answering'} (not managed)"
        )
    for name in gave_up:
        print(f"\n{name} gave up; the last lines of .run/{name}.log:")
        print(procs.log_tail(name, PS_LOG_LINES))
    return 0


def cmd_logs(names: list[str], lines: int, follow: bool) -> int:
    names = names or [p.stem for p in sorted(RUN_DIR.glob("*.log"))]
    argv = procs.tail_command(names, lines, follow)
    if argv is None:
        print("no logs in .run/ yet", flush=True)
        return 0
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def parser() -> argparse.ArgumentParser:
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
    sub.add_parser("supervise", help="restart the processes of .run/plan.json that crash (`up` starts it detached)")
    sub.add_parser(
        "forget", help="drop this checkout's databases, roles, broker vhost and users (after `down`; `up` recreates)"
    )
    sub.add_parser(
        "k8s-local-secrets",
        help="create/complete deploy/k8s/overlays/local/secrets.env and rabbitmq-definitions.json",
    )
    sub.add_parser(
        "secrets",
        help="create .run/secrets.env if missing, write .run/rabbitmq-definitions.json, print the env file's path",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    environ = with_env_file(os.environ)
    if args.command == "up":
        return cmd_up(environ)
    if args.command == "down":
        return cmd_down(environ)
    if args.command == "supervise":
        return supervise.main()
    if args.command == "forget":
        return cmd_forget(environ)
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
        for path in broker.write_k8s_local(ROOT / "deploy" / "k8s" / "overlays" / "local", events_exchange(environ)):
            print(path)
        return 0
    if args.command == "secrets":
        write_definitions(with_secrets(environ))
        print(secrets_file())
        return 0
    report(plan(environ))
    return 0
