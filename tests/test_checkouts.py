"""Checkouts that do not collide: clone A up → down → clone B up → down → clone A up, all succeed.

Two copies of this checkout's files (what a clone holds: tracked and untracked, not
ignored files) in temporary folders run the real local supervisor
(``python -m scripts.suite up`` / ``down``, with this venv's python) against the
machine's PostgreSQL and RabbitMQ. Each derives its own database, role, vhost and broker
user names from its path (scripts/suite/checkout.py), so B's secrets never meet A's
state. Then A is "cloned again" at the same path (its ``.run/`` removed, so new
secrets): ``up`` recovers by itself, saying so in one line. Ports are moved off the
standard ones with ``QUARTET_PORT_OFFSET``, so this runs beside a ``make up``; at the end
``forget`` drops every database, role, vhost and user the copies created.
"""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.suite.plan import plan as build_plan
from tests.support import ROOT

UP_TIMEOUT = 240


def copy_checkout(dest: Path) -> Path:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in filter(None, listed):
        source = ROOT / raw.decode()
        if source.is_file():
            target = dest / raw.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return dest


def free_offset(environ: dict[str, str]) -> int:
    """A QUARTET_PORT_OFFSET whose every port of the plan is free now."""
    for _ in range(50):
        offset = random.randrange(20000, 40000, 100)
        ports = [p.port for p in build_plan({**environ, "QUARTET_PORT_OFFSET": str(offset)}).all_procs() if p.port]
        ports.append(9080 + offset)
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return offset
    raise AssertionError("no free port offset")


def suite_env(offset: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"AMQP_URL", "QUARTET_RUN_DIR", "QUARTET_CHECKOUT_ID"}}
    return {
        **env,
        "QUARTET_PYTHON": sys.executable,
        "QUARTET_PORT_OFFSET": str(offset),
        "QUARTET_INSTANCES": "1",
        "QUARTET_PROMETHEUS": "0",
        "QUARTET_ENV_FILE": "",
        "DRAIN_DELAY_SECONDS": "0",
    }


def suite(checkout: Path, command: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.suite", command],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=UP_TIMEOUT,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command} in {checkout.name} failed:\n{output}"
    return output


def answers(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as resp:
        return bool(resp.status == 200)


@pytest.fixture
def clones(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    a, b = copy_checkout(tmp_path / "clone-a"), copy_checkout(tmp_path / "clone-b")
    env = suite_env(free_offset({"QUARTET_INSTANCES": "1", "QUARTET_PROMETHEUS": "0"}))
    yield a, b, env
    for checkout in (a, b):
        subprocess.run([sys.executable, "-m", "scripts.suite", "down"], cwd=checkout, env=env, timeout=120, check=False)
        subprocess.run(
            [sys.executable, "-m", "scripts.suite", "forget"], cwd=checkout, env=env, timeout=120, check=False
        )


@pytest.mark.slow
def test_clone_a_then_clone_b_then_clone_a_again_each_come_up(clones: tuple[Path, Path, dict[str, str]]) -> None:
    a, b, env = clones
    gateway = f"http://127.0.0.1:{8080 + int(env['QUARTET_PORT_OFFSET'])}"
    timings = []
    for checkout in (a, b, a):
        started = time.monotonic()
        output = suite(checkout, "up", env)
        timings.append(time.monotonic() - started)
        assert "Quartet is up" in output
        assert answers(f"{gateway}/.well-known/jwks.json")  # auth runs, its keys open
        assert answers(f"{gateway}/ping?ECHOMSG=hi")
        suite(checkout, "down", env)
    names = {
        checkout.name: subprocess.run(
            [sys.executable, "-c", "from scripts.suite import checkout; print(checkout.checkout_id({}))"],
            cwd=checkout,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        for checkout in (a, b)
    }
    assert names["clone-a"] != names["clone-b"]

    # A re-clone at A's path: same names, new secrets. It comes up alone and says what it did.
    shutil.rmtree(a / ".run")
    started = time.monotonic()
    output = suite(a, "up", {**env, "QUARTET_SERVICES": "auth,ping"})
    timings.append(time.monotonic() - started)
    assert "sealed with a SIGNING_KEK this checkout does not hold" in output
    assert answers(f"{gateway}/.well-known/jwks.json")
    print(
        f"make up times: A {timings[0]:.1f} s, B {timings[1]:.1f} s, A again {timings[2]:.1f} s, "
        f"A re-cloned {timings[3]:.1f} s; checkout ids {names}"
    )
