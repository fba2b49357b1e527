#!/usr/bin/env python3
"""``make dev``: the local suite, each process restarted when the code it runs changes.

It runs ``make up`` (python -m scripts.suite) and then watches ``services/`` and ``gateway/``
(``*.py``, ``*.sql``, ``*.html``), polling their modification times every half second
(standard library only, so nothing to install and it works on any filesystem). A change
restarts exactly the processes that run that code:

- ``services/<name>/...``  that service's instances and its workers
  (``services/reports/`` restarts ``reports`` and ``reports-worker``);
- ``services/kit/...``     every process (they all run the kit), the gateway included;
- ``gateway/...``          the gateway.

An editor's save can touch several files: the restart waits until the tree has been
quiet for a moment, then stops the processes the way ``make down`` does (SIGTERM, they
drain) and starts them again; services migrate at start, so a new ``migrations/*.sql``
is applied by the restart. A process that does not come back (a syntax error, say) is
reported with the end of its log and started again at the next change. ``web/`` is
served from disk: reload the browser. Ctrl-C (or SIGTERM) stops the suite, like a
foreground ``docker compose up``.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from scripts.suite import procs
from scripts.suite.control import child_python, timeout_from
from scripts.suite.down import cmd_down
from scripts.suite.plan import all_procs
from scripts.suite.plan import plan as build_plan
from scripts.suite.procs import ROOT, Proc
from scripts.suite.secrets import ensure_secrets, with_env_file
from scripts.suite.up import cmd_up

WATCHED_DIRS = ("services", "gateway")
WATCHED_SUFFIXES = frozenset({".py", ".sql", ".html"})
POLL_SECONDS = 0.5
QUIET_SECONDS = 0.3

Snapshot = dict[Path, int]


def snapshot(root: Path) -> Snapshot:
    """Modification time (ns) of every watched file under ``root``."""
    found: Snapshot = {}
    for folder in WATCHED_DIRS:
        for path in (root / folder).rglob("*"):
            if path.suffix in WATCHED_SUFFIXES and "__pycache__" not in path.parts:
                try:
                    found[path] = path.stat().st_mtime_ns
                except OSError:  # removed between listing and stat
                    continue
    return found


def changed(before: Snapshot, after: Snapshot) -> set[Path]:
    """Files added, removed or modified between two snapshots."""
    return {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}


def runs_code_of(proc: Proc, package: str) -> bool:
    return proc.module == package or proc.module.startswith(package + ".")


def affected(paths: Iterable[Path], running: Sequence[Proc], root: Path = ROOT) -> list[Proc]:
    """The processes (in ``running``'s order) whose code is among ``paths``."""
    hit: set[str] = set()
    for path in paths:
        parts = path.relative_to(root).parts
        if parts[0] == "gateway":
            hit |= {p.name for p in running if runs_code_of(p, "gateway")}
        elif parts[0] == "services" and (len(parts) == 2 or parts[1] == "kit"):
            hit |= {p.name for p in running}  # the kit (or the package itself): everything runs it
        elif parts[0] == "services":
            hit |= {p.name for p in running if runs_code_of(p, f"services.{parts[1]}")}
    return [p for p in running if p.name in hit]


def say(message: str) -> None:
    print(f"[dev {time.strftime('%H:%M:%S')}] {message}", flush=True)


class Reloader:
    """Restarts the processes of ``running`` whose code changed under ``root``."""

    def __init__(
        self,
        running: Sequence[Proc],
        python: str,
        base_env: Mapping[str, str],
        *,
        root: Path = ROOT,
        ready_timeout: float = 60.0,
        stop_timeout: float = 30.0,
    ) -> None:
        self.running = list(running)
        self.python = python
        self.base_env = base_env
        self.root = root
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.seen = snapshot(root)

    def poll(self) -> list[str]:
        """Restart what the changes since the last call touch; returns their names."""
        current = snapshot(self.root)
        paths = changed(self.seen, current)
        if not paths:
            return []
        while True:  # wait for the burst of writes to end
            time.sleep(QUIET_SECONDS)
            later = snapshot(self.root)
            if later == current:
                break
            paths |= changed(current, later)
            current = later
        self.seen = current
        group = affected(paths, self.running, self.root)
        if group:
            names = ", ".join(sorted(str(p.relative_to(self.root)) for p in paths)[:3])
            say(f"{names}{' …' if len(paths) > 3 else ''} changed: restarting {', '.join(p.name for p in group)}")
            self.restart(group)
        return [p.name for p in group]

    def restart(self, group: Sequence[Proc]) -> None:
        targets = []
        for proc in group:
            pid = procs.running_pid(proc.name, proc.module)
            if pid is not None:
                targets.append((proc.name, pid))
        procs.stop(targets, self.stop_timeout)
        started = [(proc, procs.start(proc, self.python, self.base_env)) for proc in group]
        try:
            procs.wait_ready(started, self.ready_timeout)
        except procs.NotReady as exc:
            say(f"{exc.name} {exc.reason}; it is started again at the next change. Last lines of its log:")
            print(procs.log_tail(exc.name, 20), flush=True)
            return
        say(f"ready: {', '.join(p.name for p, _ in started)}")


def main() -> int:
    environ = with_env_file(os.environ)
    environ = {**environ, **ensure_secrets(environ)}
    the_plan = build_plan(environ)
    # Snapshot first: an edit made while the suite starts is picked up by the first poll.
    reloader = Reloader(
        all_procs(the_plan),
        child_python(environ),
        os.environ,
        ready_timeout=timeout_from(environ, "QUARTET_READY_TIMEOUT", 60.0),
        stop_timeout=timeout_from(environ, "QUARTET_STOP_TIMEOUT", 30.0),
    )
    cmd_up(environ)
    say("watching services/ and gateway/ for changes (Ctrl-C stops the suite; `make logs FOLLOW=1` shows its logs)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            reloader.poll()
            time.sleep(POLL_SECONDS)
    except (KeyboardInterrupt, SystemExit):
        say("stopping the suite")
        cmd_down(environ)
    return 0


if __name__ == "__main__":
    sys.exit(main())
