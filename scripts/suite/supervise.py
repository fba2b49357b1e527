"""The supervisor: a small long-lived process that brings back what dies under ``make up``.

``make up`` starts it last (``python -m scripts.suite supervise``, detached, pid file
``.run/supervisor.pid``, log ``.run/supervisor.log``) and writes the plan it watches to
``.run/plan.json`` (mode 0600: the processes' environments hold secrets). Every 0.2 s,
for each process of the plan that has a pid file:

1. alive and ours (procs.is_ours) → nothing to do;
2. gone while ``.run/<name>.stopping`` names its pid → stopped on purpose (``make down``,
   ``make restart``, ``make dev`` stop through procs.stop, which writes that file); no pid
   file at all → not wanted (stopped, or never started): left alone;
3. otherwise it crashed: restarted after a backoff of 0.25 s doubling per crash in the
   window (0.25, 0.5, 1, 2 s; at most 8 s), with the plan's command and environment;
4. the 5th crash within 60 s (:data:`MAX_CRASHES`, :data:`WINDOW_SECONDS`: started once,
   restarted 4 times) gives up: the pid file is removed, the process stays down, and
   ``make ps`` shows why (its last exit) with the last lines of its log. ``make up``
   starts it again.

The exit code is known for the processes the supervisor started itself (its children);
one that ``make up`` started is reported as killed or exited with an unknown code. State
for ``make ps`` goes to ``.run/supervisor.json``; ``make down`` stops the supervisor first.
Standard library only.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType

from scripts.suite import procs
from scripts.suite.procs import Proc

NAME = "supervisor"
MODULE = "scripts.suite"
MAX_CRASHES = 5
WINDOW_SECONDS = 60.0
FIRST_DELAY_SECONDS = 0.25
MAX_DELAY_SECONDS = 8.0
TICK_SECONDS = 0.2


def plan_file() -> Path:
    return procs.RUN_DIR / "plan.json"


def state_file() -> Path:
    return procs.RUN_DIR / "supervisor.json"


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    tmp.replace(path)


def write_plan(planned: Iterable[Proc], python: str) -> Path:
    """``.run/plan.json``: what the supervisor watches and how it starts each process again."""
    document = {"python": python, "procs": [asdict(p) for p in planned]}
    _write_private(plan_file(), json.dumps(document, indent=1) + "\n")
    return plan_file()


def read_plan() -> tuple[list[Proc], str] | None:
    """The stored plan and its python, or None when there is none (or it cannot be read)."""
    try:
        document = json.loads(plan_file().read_text())
        planned = [
            Proc(p["name"], p["module"], p["port"], p["env"], tuple(p["argv"]), p.get("ready_path", "/readyz"))
            for p in document["procs"]
        ]
        return planned, str(document["python"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_state() -> dict[str, dict[str, object]]:
    try:
        found = json.loads(state_file().read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exit code unknown (started by make up, not by the supervisor)"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
        return f"killed by signal {-code}"
    return f"exit code {code}"


def backoff(crashes: int) -> float:
    """Seconds before the restart that follows crash number ``crashes`` (1-based) of the window."""
    return float(min(MAX_DELAY_SECONDS, FIRST_DELAY_SECONDS * 2 ** (crashes - 1)))


@dataclass
class Watch:
    """What the supervisor knows of one process of the plan."""

    state: str = "running"  # running | restarting | gave up | stopped
    restarts: int = 0
    crashes: list[float] = field(default_factory=list)  # monotonic times within the window
    last_exit: str | None = None
    dead_pid: int | None = None
    restart_at: float = 0.0


class Supervisor:
    """Restarts the crashed processes of the stored plan (see the module docstring)."""

    def __init__(
        self,
        base_env: Mapping[str, str],
        clock: Callable[[], float] = time.monotonic,
        out: Callable[[str], None] = print,
    ) -> None:
        self.base_env = dict(base_env)
        self.clock = clock
        self.out = out
        self.watches: dict[str, Watch] = {}
        self.children: dict[int, subprocess.Popen[bytes]] = {}
        self.exit_codes: dict[int, int] = {}
        self.planned: list[Proc] = []
        self.python = sys.executable
        self._plan_seen: float | None = None
        self._state_written = ""

    def say(self, message: str) -> None:
        self.out(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}")

    def load_plan(self) -> None:
        try:
            mtime = plan_file().stat().st_mtime
        except OSError:
            return
        if mtime == self._plan_seen:
            return
        stored = read_plan()
        if stored is not None:
            self.planned, self.python = stored
            self._plan_seen = mtime
            self.say(f"watching {', '.join(p.name for p in self.planned)}")

    def reap(self) -> None:
        for pid, child in list(self.children.items()):
            code = child.poll()
            if code is not None:
                self.exit_codes[pid] = code
                del self.children[pid]

    def tick(self) -> None:
        self.load_plan()
        self.reap()
        for proc in self.planned:
            self.check(proc)
        self.write_state()

    def check(self, proc: Proc) -> None:
        watch = self.watches.setdefault(proc.name, Watch())
        pid = procs.read_pid(proc.name)
        if pid is None:
            if watch.state != "gave up":
                watch.state = "stopped"
            return
        now = self.clock()
        if watch.state == "restarting" and watch.dead_pid == pid:
            if now >= watch.restart_at:
                self.restart(proc, watch)
            return
        if pid in self.children or (pid not in self.exit_codes and procs.is_ours(pid, proc.module)):
            if watch.state == "gave up":  # `make up` started it again: a new window
                watch.crashes = []
            watch.state, watch.dead_pid = "running", None
            return
        if procs.stopping_on_purpose(proc.name, pid) or procs.read_pid(proc.name) != pid:
            return  # a stop on purpose, or someone started it again meanwhile
        watch.last_exit = describe_exit(self.exit_codes.pop(pid, None))
        watch.crashes = [t for t in watch.crashes if now - t < WINDOW_SECONDS] + [now]
        if len(watch.crashes) >= MAX_CRASHES:
            watch.state, watch.dead_pid = "gave up", None
            procs.pid_file(proc.name).unlink(missing_ok=True)
            self.say(
                f"{proc.name} gave up: {len(watch.crashes)} crashes within {WINDOW_SECONDS:.0f} s, "
                f"last {watch.last_exit} (log .run/{proc.name}.log)"
            )
            return
        delay = backoff(len(watch.crashes))
        watch.state, watch.dead_pid, watch.restart_at = "restarting", pid, now + delay
        self.say(f"{proc.name} (pid {pid}) {watch.last_exit}; restarting in {delay:g} s")

    def restart(self, proc: Proc, watch: Watch) -> None:
        if watch.dead_pid is not None and procs.stopping_on_purpose(proc.name, watch.dead_pid):
            watch.state, watch.dead_pid = "stopped", None
            return
        child = procs.spawn(proc, self.python, self.base_env)
        self.children[child.pid] = child
        watch.restarts += 1
        watch.state, watch.dead_pid = "running", None
        self.say(f"{proc.name} restarted (pid {child.pid}, restart {watch.restarts})")

    def state(self) -> dict[str, dict[str, object]]:
        now = self.clock()
        return {
            name: {
                "state": w.state,
                "restarts": w.restarts,
                "last_exit": w.last_exit,
                "crashes_in_window": len([t for t in w.crashes if now - t < WINDOW_SECONDS]),
            }
            for name, w in self.watches.items()
        }

    def write_state(self) -> None:
        text = json.dumps(self.state(), indent=1, sort_keys=True) + "\n"
        if text != self._state_written:
            _write_private(state_file(), text)
            self._state_written = text

    def run(self) -> int:
        stopping = False

        def stop(_signum: int, _frame: FrameType | None) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        self.say(
            f"supervisor {os.getpid()} up: restart with backoff {FIRST_DELAY_SECONDS:g} s doubling (max "
            f"{MAX_DELAY_SECONDS:.0f} s); give up after {MAX_CRASHES} crashes within {WINDOW_SECONDS:.0f} s"
        )
        while not stopping:
            self.tick()
            time.sleep(TICK_SECONDS)
        self.say("supervisor stopped (the processes keep running)")
        return 0


def main() -> int:
    """``python -m scripts.suite supervise``: run in the foreground until SIGTERM."""
    return Supervisor(os.environ, out=lambda line: print(line, flush=True)).run()


def proc(python: str) -> Proc:
    """The supervisor as a process of the suite (started detached by ``make up``)."""
    return Proc(NAME, MODULE, None, {}, (python, "-m", MODULE, "supervise"))


def ensure_running(python: str, base_env: Mapping[str, str]) -> tuple[int, bool]:
    """Start the supervisor unless it runs; returns (pid, started now)."""
    pid = procs.running_pid(NAME, MODULE)
    if pid is not None:
        return pid, False
    return procs.start(proc(python), python, base_env), True
