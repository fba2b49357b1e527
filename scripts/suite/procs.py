"""Background processes of the local suite: pid files, start, readiness, stop.

Every process runs in its own session (so its process group id is its pid),
writes to ``.run/<name>.log`` and is recorded in ``.run/<name>.pid``. Before a
signal is sent, the pid is checked against the command line we started
(``python -m <module>``, working directory this checkout): a stale pid file whose
number now belongs to another program is removed, never signalled.

Standard library only.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
# QUARTET_RUN_DIR moves the pid files, logs and state elsewhere (the supervisor's tests).
RUN_DIR = Path(os.environ.get("QUARTET_RUN_DIR") or ROOT / ".run")

# Requests to our own ports never go through a proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass(frozen=True)
class Proc:
    """One background process of the suite: ``python -m module`` (or ``argv``) with its env."""

    name: str
    module: str
    port: int | None
    env: Mapping[str, str] = field(default_factory=dict)
    # A program that is not ``python -m module`` (Prometheus): its argv; ``module`` is then
    # the program's file name, which is what :func:`is_ours` checks.
    argv: tuple[str, ...] = ()
    # What answers 200 once it is ready (Prometheus: /-/ready).
    ready_path: str = "/readyz"

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://127.0.0.1:{self.port}"


def pid_file(name: str) -> Path:
    return RUN_DIR / f"{name}.pid"


def log_file(name: str) -> Path:
    return RUN_DIR / f"{name}.log"


def stopping_file(name: str) -> Path:
    """Written (with the pid) while :func:`stop` stops ``name`` on purpose: the supervisor leaves it be."""
    return RUN_DIR / f"{name}.stopping"


def stopping_on_purpose(name: str, pid: int) -> bool:
    try:
        return int(stopping_file(name).read_text().split()[0]) == pid
    except (OSError, ValueError, IndexError):
        return False


def recorded_names() -> list[str]:
    """Names of every process that has a pid file in .run/."""
    return sorted(p.stem for p in RUN_DIR.glob("*.pid"))


def read_pid(name: str) -> int | None:
    try:
        return int(pid_file(name).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie, which nobody reaped yet, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def command_line(pid: int) -> list[str]:
    if Path("/proc/self/cmdline").exists():
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            return []
        return [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    # No /proc (macOS): ask ps.
    out = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return out.stdout.split()


def is_ours(pid: int, module: str) -> bool:
    """Does ``pid`` still run ``python -m <module>`` (or the program ``module``) started from this checkout?"""
    if not alive(pid):
        return False
    argv = command_line(pid)
    runs_module = any(arg == "-m" and nxt == module for arg, nxt in itertools.pairwise(argv))
    runs_program = bool(argv) and "." not in module and Path(argv[0]).name == module
    if not (runs_module or runs_program):
        return False
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return True  # no /proc to ask; the command line has to do
    return cwd.resolve() == ROOT


def running_pid(name: str, module: str, forget_stale: bool = True) -> int | None:
    """The pid of our live process ``name``, or None; a stale pid file is removed unless told not to."""
    pid = read_pid(name)
    if pid is not None and is_ours(pid, module):
        return pid
    if forget_stale:
        pid_file(name).unlink(missing_ok=True)
    return None


def start(proc: Proc, python: str, base_env: Mapping[str, str]) -> int:
    """Start ``python -m proc.module`` (or ``proc.argv``) in its own session; returns its pid."""
    return spawn(proc, python, base_env).pid


def spawn(proc: Proc, python: str, base_env: Mapping[str, str]) -> subprocess.Popen[bytes]:
    """:func:`start`, returning the child (whoever keeps it can read its exit code)."""
    RUN_DIR.mkdir(exist_ok=True)
    env = {**base_env, **proc.env}
    with log_file(proc.name).open("ab") as log:
        log.write(f"\n==== {time.strftime('%Y-%m-%dT%H:%M:%S')} suite starts {proc.module} ====\n".encode())
        log.flush()
        child = subprocess.Popen(
            list(proc.argv) or [python, "-m", proc.module],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    tmp = pid_file(proc.name).with_suffix(".pid.tmp")
    tmp.write_text(f"{child.pid}\n")
    tmp.replace(pid_file(proc.name))
    return child


def http_ready(port: int, path: str = "/readyz", timeout: float = 1.0) -> bool:
    try:
        with _LOCAL.open(f"http://127.0.0.1:{port}{path}", timeout=timeout) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def port_answers(host: str, port: int, timeout: float = 1.0) -> bool:
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(name: str, lines: int = 40) -> str:
    """The last ``lines`` lines of a log, from its last ``==== ... ====`` marker (this run) on."""
    try:
        text = log_file(name).read_text(errors="replace")
    except OSError:
        return "(no log)"
    all_lines = text.splitlines()
    markers = [i for i, line in enumerate(all_lines) if line.startswith("==== ")]
    recent = all_lines[markers[-1] :] if markers else all_lines
    return "\n".join(recent[-lines:])


class NotReady(Exception):
    """A process exited or did not become ready in time."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def wait_ready(procs: Sequence[tuple[Proc, int]], timeout: float, settle: float = 2.0) -> None:
    """Wait until every process answers /readyz 200 (or, without a port, stays up ``settle`` s)."""
    started = time.monotonic()
    deadline = started + timeout
    pending = list(procs)
    while pending:
        for proc, pid in list(pending):
            if not alive(pid):
                raise NotReady(proc.name, "exited")
            if proc.port is None:
                if time.monotonic() - started >= settle:
                    pending.remove((proc, pid))
            elif http_ready(proc.port, proc.ready_path):
                pending.remove((proc, pid))
        if not pending:
            return
        if time.monotonic() > deadline:
            raise NotReady(pending[0][0].name, f"/readyz not 200 after {timeout:.0f}s")
        time.sleep(0.2)


def _signal_group(pid: int, sig: int) -> None:
    # Each process leads its own group (start_new_session), so signal the group:
    # any child it spawned goes too. If it somehow is not a leader, signal it alone.
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def stop(targets: Sequence[tuple[str, int]], timeout: float) -> dict[str, str]:
    """SIGTERM every (name, pid), wait up to ``timeout`` s, then SIGKILL what is left.

    The pids must have been checked with :func:`is_ours` just before. Returns how
    each one ended: ``"stopped"`` or ``"killed"``. Pid files are removed. While it runs,
    ``<name>.stopping`` tells the supervisor (supervise.py) that these exits are wanted.
    """
    RUN_DIR.mkdir(exist_ok=True)
    for name, pid in targets:
        stopping_file(name).write_text(f"{pid}\n")
    for _, pid in targets:
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(alive(pid) for _, pid in targets) and time.monotonic() < deadline:
        time.sleep(0.1)
    result: dict[str, str] = {}
    for name, pid in targets:
        if alive(pid):
            _signal_group(pid, signal.SIGKILL)
            kill_deadline = time.monotonic() + 5
            while alive(pid) and time.monotonic() < kill_deadline:
                time.sleep(0.05)
            result[name] = "killed"
        else:
            result[name] = "stopped"
        if read_pid(name) == pid:  # a process started since (make restart) keeps its file
            pid_file(name).unlink(missing_ok=True)
        stopping_file(name).unlink(missing_ok=True)
    return result


def tail_command(names: Sequence[str], lines: int, follow: bool) -> list[str] | None:
    """``tail`` over the logs of ``names`` that exist; None when there is none."""
    files = [str(log_file(n)) for n in names if log_file(n).exists()]
    if not files:
        return None
    tail = shutil.which("tail") or "tail"
    return [tail, "-n", str(lines), *(["-F"] if follow else []), *files]
