#!/usr/bin/env python3
"""``make dev``: the local suite, each process restarted when the code it runs changes.

It runs ``make up`` (python -m scripts.suite) and then watches ``services/`` and ``gateway/``
(``*.py``, ``*.sql``, ``*.html``) through ``watchfiles`` (inotify on Linux, FSEvents on
macOS; it falls back to polling where the filesystem sends no events). A change restarts
exactly the processes that run that code:

- ``services/<name>/...``  that service's instances and its workers
  (``services/reports/`` restarts ``reports`` and ``reports-worker``);
- ``services/kit/...``     every process (they all run the kit), the gateway included;
- ``gateway/...``          the gateway.

An editor's save can touch several files: watchfiles groups the changes until the tree
has been quiet for 0.3 s, then the restart stops the processes the way ``make down`` does (SIGTERM, they
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
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import watchfiles

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
QUIET_MS = 300  # a burst of writes (an editor's save) is one change once the tree is quiet this long


def is_source(_change: watchfiles.Change, path: str) -> bool:
    """The files whose change restarts a process: code, migrations, templates (not caches)."""
    found = Path(path)
    return found.suffix in WATCHED_SUFFIXES and "__pycache__" not in found.parts


def changes(root: Path = ROOT, stop: threading.Event | None = None) -> Iterator[set[Path]]:
    """Each burst of changes to watched files under ``root`` (blocks until the next one)."""
    folders = [root / folder for folder in WATCHED_DIRS if (root / folder).is_dir()]
    for batch in watchfiles.watch(*folders, watch_filter=is_source, step=QUIET_MS, stop_event=stop):
        yield {Path(path) for _, path in batch}


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

    def handle(self, paths: set[Path]) -> list[str]:
        """Restart what the changed ``paths`` touch; returns their names."""
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
    reloader = Reloader(
        [p for p in all_procs(the_plan) if not p.argv],  # our code only: not Prometheus
        child_python(environ),
        os.environ,
        ready_timeout=timeout_from(environ, "QUARTET_READY_TIMEOUT", 60.0),
        stop_timeout=timeout_from(environ, "QUARTET_STOP_TIMEOUT", 30.0),
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cmd_up(environ)
    try:
        say("watching services/ and gateway/ for changes (Ctrl-C stops the suite; `make logs FOLLOW=1` shows its logs)")
        for paths in changes(ROOT, stop):
            reloader.handle(paths)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        say("stopping the suite")
        cmd_down(environ)
    return 0


if __name__ == "__main__":
    sys.exit(main())
