"""`make restart` under load: every instance drained in turn, no request fails, no write is lost.

Two todos and two ping instances run as the local supervisor runs them (scripts/suite/'s
process table, pid files in a temporary run directory, ``DRAIN_DELAY_SECONDS`` as
``make up`` sets it) behind a real gateway; the todos share the test suite's database, so
auth is the suite's. While clients read and write through the gateway, the supervisor's
own rolling restart (:func:`suite.roll`) restarts all four, one at a time.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from scripts.suite import procs as suite_procs
from scripts.suite.control import start_all
from scripts.suite.down import roll
from scripts.suite.table import SHARED_DEFAULTS, instance_name
from tests.suite import MODULES, PING_REGION, Suite, User, launch_gateway
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent

CLIENTS = 12


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setattr(suite_procs, "RUN_DIR", tmp_path)
    yield tmp_path
    leftovers = [(name, pid) for name in suite_procs.recorded_names() if (pid := suite_procs.read_pid(name))]
    suite_procs.stop(leftovers, timeout=30)


def _instances(name: str, env: dict[str, str]) -> list[suite_procs.Proc]:
    """Two instances of the table's service ``name`` on free ports, as the supervisor runs them."""
    procs = []
    for n in (1, 2):
        port = free_port()
        instance = instance_name(name, n)
        procs.append(suite_procs.Proc(instance, MODULES[name], port, {**env, "PORT": str(port), "INSTANCE": instance}))
    return procs


@pytest.mark.slow
async def test_rolling_restart_under_reads_and_writes_fails_nothing_and_loses_nothing(
    suite: Suite, new_user: User, run_dir: Path, log_dir: Path
) -> None:
    drain = {"DRAIN_DELAY_SECONDS": SHARED_DEFAULTS["DRAIN_DELAY_SECONDS"], "HOST": "127.0.0.1"}
    todos = _instances("todos", {**suite.envs["todos"], **drain})
    pings = _instances("ping", {"REGION": PING_REGION, **drain})
    timeout = 60.0
    await asyncio.to_thread(start_all, todos + pings, sys.executable, timeout)
    upstreams = {"TODOS_URLS": ",".join(str(p.url) for p in todos), "PING_URLS": ",".join(str(p.url) for p in pings)}
    gateway = launch_gateway(log_dir, {"AUTH_URL": suite.auth_url, "AUTH_URLS": suite.auth_url, **upstreams})
    statuses: Counter[str] = Counter()
    created: list[str] = []
    worst = 0.0
    rolling = True

    async def client(n: int) -> None:
        nonlocal worst
        headers = {"Authorization": f"Bearer {new_user.token}"}
        async with httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=30) as http:
            i = 0
            while rolling:
                i += 1
                started = time.monotonic()
                if i % 3 == 0:
                    resp = await http.post("/todos", json={"content": f"write {n}-{i}"})
                    if resp.status_code == 201:
                        created.append(resp.json()["id"])
                    kind = "POST /todos"
                elif i % 3 == 1:
                    resp = await http.get("/todos", params={"limit": 10})
                    kind = "GET /todos"
                else:
                    resp = await http.get("/ping", params={"ECHOMSG": "x"})
                    kind = "GET /ping"
                worst = max(worst, time.monotonic() - started)
                statuses[f"{kind} {resp.status_code}"] += 1

    try:
        clients = [asyncio.create_task(client(n)) for n in range(CLIENTS)]
        await asyncio.sleep(1)
        await asyncio.to_thread(roll, todos + pings, sys.executable, timeout, {})
        await asyncio.sleep(1)
        rolling = False
        await asyncio.wait_for(asyncio.gather(*clients), timeout=60)

        print(f"rolling restart of 4 instances under {CLIENTS} clients: {dict(statuses)}; worst {worst:.2f} s")
        failed = {k: v for k, v in statuses.items() if not k.endswith((" 200", " 201"))}
        assert failed == {}
        assert statuses["POST /todos 201"] > 0 and statuses["GET /todos 200"] > 0
        # Every process was replaced.
        assert all(suite_procs.read_pid(p.name) for p in todos + pings)

        # Every acknowledged write is there.
        async with suite.client(new_user) as http:
            found: set[str] = set()
            cursor = None
            for _ in range(1000):
                resp = await http.get("/todos", params={"limit": 100, **({"cursor": cursor} if cursor else {})})
                assert resp.status_code == 200
                found |= {item["id"] for item in resp.json()["items"]}
                cursor = resp.json()["next_cursor"]
                if cursor is None:
                    break
        assert set(created) <= found, f"{len(set(created) - found)} acknowledged writes lost"
    finally:
        rolling = False
        gateway.stop()
