"""The supervisor `make up` leaves running (scripts/suite/supervise.py): what crashes comes back.

Processes run as ``make up`` runs them (scripts/suite/'s process table, pid files in a
temporary run directory, started detached and not children of the supervisor) on free
ports; the real supervisor (``python -m scripts.suite supervise``) watches the plan
written to that directory. ``kill -9`` of the gateway, of a todos instance: each answers
again; a process made to crash at start is given up after the documented number of
crashes and ``python -m scripts.suite ps`` says so, with its exit code and log lines.
The recovery times are printed (the 3 s of the issue is measured under a real
``make up``: docs/running.md).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scripts.suite import procs as suite_procs
from scripts.suite import supervise
from scripts.suite.control import start_all, stop_names
from scripts.suite.down import roll
from tests.suite import MODULES, PING_REGION, Suite, nothing_listening
from tests.support import ROOT, free_port

READY_TIMEOUT = 60.0


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(suite_procs, "RUN_DIR", tmp_path)
    yield tmp_path
    names = suite_procs.recorded_names()
    first = [(n, pid) for n in names if n == supervise.NAME and (pid := suite_procs.read_pid(n))]
    suite_procs.stop(first, timeout=10)
    leftovers = [(n, pid) for n in suite_procs.recorded_names() if (pid := suite_procs.read_pid(n))]
    suite_procs.stop(leftovers, timeout=30)


def start_supervisor(run_dir: Path) -> int:
    env = {**os.environ, "QUARTET_RUN_DIR": str(run_dir)}
    pid = suite_procs.start(supervise.proc(sys.executable), sys.executable, env)
    wait_for(lambda: "watching" in (run_dir / "supervisor.log").read_text(), "the supervisor to read the plan")
    return pid


def wait_for(check: Callable[[], bool], what: str, timeout: float = 60.0) -> float:
    """Seconds until ``check()`` holds (polled every 50 ms); fails after ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if check():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"no {what} after {timeout:.0f} s")


def get_ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def watched(run_dir: Path, name: str) -> dict[str, object]:
    entry = json.loads((run_dir / "supervisor.json").read_text()).get(name, {})
    return dict(entry)


def ping_proc(name: str = "ping", **env: str) -> suite_procs.Proc:
    port = free_port()
    base = {"HOST": "127.0.0.1", "PORT": str(port), "REGION": PING_REGION, "INSTANCE": name}
    return suite_procs.Proc(name, MODULES["ping"], port, {**base, **env})


def ps(run_dir: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.suite", "ps"],
        cwd=ROOT,
        env={**os.environ, "QUARTET_RUN_DIR": str(run_dir), "QUARTET_ENV_FILE": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_backoff_doubles_from_a_quarter_second_up_to_its_cap() -> None:
    assert [supervise.backoff(n) for n in range(1, 7)] == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
    assert (supervise.MAX_CRASHES, supervise.WINDOW_SECONDS) == (5, 60.0)


@pytest.mark.slow
def test_a_killed_gateway_and_a_killed_todos_instance_answer_again(suite: Suite, run_dir: Path) -> None:
    todos = []
    for name in ("todos", "todos-2"):
        port = free_port()
        env = {**suite.envs["todos"], "HOST": "127.0.0.1", "PORT": str(port), "INSTANCE": name}
        todos.append(suite_procs.Proc(name, MODULES["todos"], port, env))
    ping = ping_proc()
    start_all([*todos, ping], sys.executable, READY_TIMEOUT)
    gateway_port = free_port()
    upstreams = {
        "AUTH_URLS": suite.auth_url,
        "TODOS_URLS": ",".join(str(p.url) for p in todos),
        "PING_URLS": str(ping.url),
        "REPORTS_URLS": nothing_listening(),
    }
    gateway_env = {"HOST": "127.0.0.1", "PORT": str(gateway_port), "METRICS_PORT": str(free_port())}
    gateway = suite_procs.Proc(
        "gateway", MODULES["gateway"], gateway_port, {**gateway_env, "AUTH_URL": suite.auth_url, **upstreams}
    )
    start_all([gateway], sys.executable, READY_TIMEOUT)
    supervise.write_plan([*todos, ping, gateway], sys.executable)
    start_supervisor(run_dir)
    through_gateway = f"http://127.0.0.1:{gateway_port}/ping?ECHOMSG=back"
    assert get_ok(through_gateway)

    before = suite_procs.read_pid("gateway")
    assert before is not None
    os.kill(before, signal.SIGKILL)
    gateway_back = wait_for(lambda: get_ok(through_gateway), "gateway answer")
    assert suite_procs.read_pid("gateway") not in {None, before}

    victim = suite_procs.read_pid("todos-2")
    assert victim is not None
    os.kill(victim, signal.SIGKILL)
    todos_back = wait_for(lambda: get_ok(f"{todos[1].url}/readyz"), "todos-2 /readyz 200")
    print(f"after kill -9: the gateway answered again in {gateway_back:.2f} s, todos-2 in {todos_back:.2f} s")

    wait_for(lambda: watched(run_dir, "todos-2").get("restarts") == 1, "todos-2 restart counted")
    assert watched(run_dir, "gateway")["restarts"] == 1
    assert watched(run_dir, "gateway")["last_exit"] == supervise.describe_exit(None)  # make up started it
    assert watched(run_dir, "todos")["restarts"] == 0
    table = ps(run_dir)
    assert any(line.split()[:1] == ["gateway"] and " 1  ready" in line for line in table.splitlines()), table
    log = (run_dir / "supervisor.log").read_text()
    assert "gateway (pid" in log and "restarting in 0.25 s" in log


@pytest.mark.slow
def test_stops_on_purpose_stay_stopped_and_a_crash_at_start_is_given_up(run_dir: Path) -> None:
    ping, other = ping_proc(), ping_proc("ping-2")
    start_all([ping, other], sys.executable, READY_TIMEOUT)
    supervise.write_plan([ping, other], sys.executable)
    start_supervisor(run_dir)

    # `make restart` and `make down` stop on purpose: nothing is brought back or counted.
    roll([other], sys.executable, READY_TIMEOUT, {})
    assert stop_names(["ping-2"], {}) == {"ping-2": "stopped"}
    time.sleep(2 * supervise.TICK_SECONDS + supervise.FIRST_DELAY_SECONDS)
    assert suite_procs.read_pid("ping-2") is None
    assert watched(run_dir, "ping-2") == {**watched(run_dir, "ping-2"), "restarts": 0, "state": "stopped"}

    # From now on ping cannot start (a setting it refuses), as a process broken by an edit.
    broken = suite_procs.Proc(ping.name, ping.module, ping.port, {**ping.env, "PORT": "not-a-port"})
    supervise.write_plan([broken, other], sys.executable)
    wait_for(lambda: (run_dir / "supervisor.log").read_text().count("watching") == 2, "the new plan read")
    pid = suite_procs.read_pid("ping")
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: watched(run_dir, "ping").get("state") == "gave up", "give-up", timeout=90)

    entry = watched(run_dir, "ping")
    assert entry["restarts"] == supervise.MAX_CRASHES - 1
    assert entry["crashes_in_window"] == supervise.MAX_CRASHES
    assert str(entry["last_exit"]).startswith("exit code ")
    assert entry["last_exit"] != "exit code 0"
    assert suite_procs.read_pid("ping") is None
    time.sleep(1)
    assert watched(run_dir, "ping")["restarts"] == supervise.MAX_CRASHES - 1  # it stays down
    table = ps(run_dir)
    print(table)
    assert f"GAVE UP after {supervise.MAX_CRASHES} crashes within 60 s (last: {entry['last_exit']})" in table
    assert "ping gave up; the last lines of" in table
    assert "not-a-port" in table  # the error from its log
