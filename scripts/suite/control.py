"""What every command of the supervisor does to processes: start a group and wait, stop by name.

The steps of ``up``, ``down``, ``restart`` and ``make dev`` are built from these; they
turn a failure into a ``SystemExit`` with the end of the process's log. Standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from scripts.suite import procs, prometheus, supervise, table
from scripts.suite.procs import ROOT, RUN_DIR, Proc

# The upstream lists the running gateway was started with (it reads them once, at start).
GATEWAY_UPSTREAMS_FILE = RUN_DIR / "gateway.upstreams.json"


def say(message: str) -> None:
    print(message, flush=True)


def child_python(environ: Mapping[str, str]) -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return environ.get("QUARTET_PYTHON") or (str(venv) if venv.exists() else sys.executable)


def timeout_from(environ: Mapping[str, str], key: str, default: float) -> float:
    try:
        return float(environ.get(key, default))
    except ValueError:
        raise SystemExit(f"{key} must be a number of seconds") from None


def resolve(name: str) -> tuple[str, int | None] | None:
    """(module, port) of a process the suite may have started: a row of the table, Prometheus, the supervisor."""
    if name == prometheus.NAME:
        return prometheus.NAME, None
    if name == supervise.NAME:
        return supervise.MODULE, None
    return table.resolve(name)


def module_of(name: str) -> str | None:
    found = resolve(name)
    return None if found is None else found[0]


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


def stop_names(names: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """Stop (drained: SIGTERM first) each named process we started; returns how each one ended."""
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
