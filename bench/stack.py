"""A todos instance and a gateway in front of it, started by a benchmark on free ports.

Scenarios that compare two settings of the same stack (tracing off/on, the page cache
off/on) each start their own pair beside the ``make up`` suite: the suite's todos
database and auth, a todos instance and a gateway of their own. The pair is stopped
newest first when the ``with`` block ends.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from scripts.suite.plan import plan as build_plan
from scripts.suite.procs import ROOT, free_port
from scripts.suite.secrets import with_secrets
from scripts.suite.table import SHARED_DEFAULTS


@dataclass(frozen=True)
class Stack:
    gateway: str  # URL
    todos: str  # URL
    pids: list[int]


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until ``url``/readyz answers 200; RuntimeError if ``proc`` exits, TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@contextmanager
def todos_behind_gateway(
    tag: str,
    *,
    todos: Mapping[str, str] = {},
    gateway: Mapping[str, str] = {},
    drop: tuple[str, ...] = (),
) -> Iterator[Stack]:
    """The pair, each with this environment less the names starting with ``drop``, the plan's, then the extras."""
    the_plan = build_plan(with_secrets(os.environ))  # the broker/db passwords `make up` used
    todos_env = next(p.env for p in the_plan.services if p.name == "todos")
    todos_port, gateway_port = free_port(), free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    envs = {
        "todos": {**base, **todos_env, "PORT": str(todos_port), "INSTANCE": "bench-todos", **todos},
        "gateway": {
            **base,
            **SHARED_DEFAULTS,
            **the_plan.upstreams,
            "HOST": "127.0.0.1",
            "PORT": str(gateway_port),
            "INSTANCE": "bench-gateway",
            "METRICS_PORT": str(free_port()),  # the suite's gateway holds 9080
            "TODOS_URLS": f"http://127.0.0.1:{todos_port}",
            **gateway,
        },
    }
    log_dir: Path = ROOT / ".run"
    log_dir.mkdir(exist_ok=True)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, module in (("todos", "services.todos"), ("gateway", "gateway")):
            with (log_dir / f"bench-{tag}-{name}.log").open("ab") as log:
                proc = subprocess.Popen(
                    [sys.executable, "-m", module], cwd=ROOT, env=envs[name], stdout=log, stderr=subprocess.STDOUT
                )
            procs.append(proc)
            wait_ready(f"http://127.0.0.1:{envs[name]['PORT']}", proc)
        yield Stack(f"http://127.0.0.1:{gateway_port}", f"http://127.0.0.1:{todos_port}", [p.pid for p in procs])
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
