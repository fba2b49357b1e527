"""What a request costs in CPU: the whole machine's and each process's, per request served.

One measurement (:func:`measure`) runs wrk against a URL and reads, before and after:

- ``/proc/stat``: the machine's busy jiffies (all but idle and iowait), of which wrk's own
  (its rusage, as this process's child) is taken off: what the servers spent;
- ``/proc/<pid>/stat`` (utime + stime, all threads) of every process it is told to
  watch: the gateway, each service instance, PostgreSQL (the postmaster and its
  backends), the broker, the floor app.

Both are divided by the requests wrk counted and given in milliseconds. The machine
is shared, so the machine figure carries whatever else ran meanwhile; the sum of the
watched processes (``stack``) does not, and is what the ratios to the floor use
(the machine's ratio is kept beside it).
"""

from __future__ import annotations

import os
import re
import resource
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def machine_busy_seconds() -> float:
    fields = [int(x) for x in (PROC / "stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is inside user already)
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / TICK


def process_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (every thread), None once it is gone."""
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    after_name = raw.rsplit(")", 1)[1].split()
    return (int(after_name[11]) + int(after_name[12])) / TICK


def pids_named(*names: str) -> list[int]:
    """Pids whose command name (``comm``) is one of ``names``."""
    found = []
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm in names:
                found.append(int(entry.name))
    return found


def postgres_pids(databases: frozenset[str]) -> list[int]:
    """The postmaster, its background workers and the backends connected to ``databases``
    (other sessions' tests share the server: their backends are left out)."""
    pids = []
    for pid in pids_named("postgres", "postmaster"):
        try:
            title = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # A backend's title is "postgres: <user> <database> <client> <state>".
        match = re.match(r"postgres: (\S+) (\S+) \d", title)
        if match is None or match.group(2) in databases:
            pids.append(pid)
    return pids


Watch = Callable[[], Mapping[str, list[int]]]


@dataclass
class Snapshot:
    machine: float
    children: float
    per_process: dict[str, float]


def _snapshot(watch: Mapping[str, list[int]]) -> Snapshot:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    per = {name: sum(process_seconds(pid) or 0.0 for pid in pids) for name, pids in watch.items()}
    return Snapshot(machine_busy_seconds(), usage.ru_utime + usage.ru_stime, per)


def measure(run_wrk: Callable[[], dict[str, float]], watch: Mapping[str, list[int]]) -> dict[str, float]:
    """Run wrk once; its figures plus ``cpu_ms`` (machine less wrk), ``stack_ms`` (the watched
    processes together) and ``<name>_ms`` per watched process, each per request."""
    before = _snapshot(watch)
    figures = run_wrk()
    after = _snapshot(watch)
    requests = max(figures["requests"], 1.0)
    wrk_seconds = after.children - before.children
    figures["wrk_ms"] = wrk_seconds * 1000 / requests
    figures["cpu_ms"] = (after.machine - before.machine - wrk_seconds) * 1000 / requests
    stack = 0.0
    for name, seconds in after.per_process.items():
        spent = seconds - before.per_process[name]
        stack += spent
        figures[f"{name}_ms"] = spent * 1000 / requests
    figures["stack_ms"] = stack * 1000 / requests
    return figures


def run_quiet(cmd: list[str], timeout: float) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout).stdout
