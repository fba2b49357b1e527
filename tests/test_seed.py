"""`make seed` (scripts/seed.py): the demo account, a month of todos, three reports; twice gives the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.flows import AuthFlows
from tests.commands import run_python, succeeded
from tests.suite import USER_SCOPES, Suite, launch_gateway
from tests.support import ServiceProcess

EMAIL = "demo@quartet.localhost"
PASSWORD = "quartet-demo-password"


@pytest.fixture(scope="module")
async def gateway(suite: Suite, log_dir: Path) -> AsyncIterator[ServiceProcess]:
    """A gateway in front of the test suite (the seed goes through the public API, like a user)."""
    with launch_gateway(log_dir, suite.gateway_env()) as proc:
        yield proc


async def run_seed(suite: Suite, gateway: ServiceProcess) -> str:
    env = {
        # The admin step runs `python -m services.todos seed-demo` against this suite's todos database,
        # found the way `make up` would find it.
        "TODOS_DATABASE_URL": suite.envs["todos"]["DATABASE_URL"],
        "PYTHONUNBUFFERED": "1",
    }
    done = await asyncio.to_thread(run_python, "-m", "scripts.seed", "--gateway", gateway.url, env=env, timeout=240)
    return succeeded(done)


async def demo_client(gateway: ServiceProcess) -> httpx.AsyncClient:
    async with AuthFlows(gateway.url) as flows:
        tokens = await flows.sign_in(EMAIL, USER_SCOPES, PASSWORD)
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    return httpx.AsyncClient(base_url=gateway.url, headers=headers, timeout=30)


async def demo_state(gateway: ServiceProcess) -> dict[str, Any]:
    """What the demo user sees: their todos (all pages), reports and summary."""
    async with await demo_client(gateway) as http:
        todos: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = (await http.get("/todos", params={"limit": 50, **({"cursor": cursor} if cursor else {})})).json()
            todos += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        reports = (await http.get("/reports", params={"limit": 100})).json()["items"]
        summary = (await http.get("/reports/summary")).json()
        me = (await http.get("/auth/me")).json()
    fields = ("id", "content", "is_finished", "created_at", "finished_at")
    return {
        "user": me["id"],
        "todos": [{k: t[k] for k in fields} for t in todos],
        "reports": sorted((r["id"], r["format"], r["status"]) for r in reports),
        "totals": (summary["total"], summary["open"], summary["finished"]),
        "per_day": [(d["date"], d["created"], d["finished"]) for d in summary["per_day"]],
    }


async def test_seeding_twice_gives_the_same_demo_account_todos_and_reports(
    suite: Suite, gateway: ServiceProcess
) -> None:
    out = await run_seed(suite, gateway)
    assert f"{gateway.url.replace('127.0.0.1', 'localhost')}/app/" in out
    assert EMAIL in out and PASSWORD in out and "-m scripts.signin" in out
    first = await demo_state(gateway)

    todos = first["todos"]
    assert len(todos) >= 30
    now = datetime.now(UTC)
    created = [datetime.fromisoformat(t["created_at"]) for t in todos]
    assert all(now - timedelta(days=30) <= c <= now for c in created)
    assert len({c.date() for c in created}) >= 20
    finished = [t for t in todos if t["is_finished"]]
    assert 0 < len(finished) < len(todos)
    assert all(datetime.fromisoformat(t["finished_at"]) > datetime.fromisoformat(t["created_at"]) for t in finished)
    assert sorted(fmt for _, fmt, _ in first["reports"]) == ["csv", "json", "pdf"]
    assert {status for _, _, status in first["reports"]} == {"done"}
    # The reports read model followed the backdated todos: same totals, spread over the days.
    assert first["totals"] == (len(todos), len(todos) - len(finished), len(finished))
    assert sum(created for _, created, _ in first["per_day"]) == len(todos)
    assert sum(1 for _, created, _ in first["per_day"] if created) >= 20

    # Play with the demo account, then seed again: it is back to the demo, nothing doubled.
    async with await demo_client(gateway) as http:
        added = await http.post("/todos", json={"content": "not part of the demo"})
        assert added.status_code == 201
        open_one = next(t for t in todos if not t["is_finished"])
        assert (await http.put(f"/todos/{open_one['id']}/finish")).status_code == 200

    out = await run_seed(suite, gateway)
    assert '"reset": 1' in out and '"deleted": 1' in out and '"created": 0' in out
    second = await demo_state(gateway)
    # per_day is activity history: the todo created (and deleted) today still counts there.
    assert {k: v for k, v in second.items() if k != "per_day"} == {k: v for k, v in first.items() if k != "per_day"}

    out = await run_seed(suite, gateway)
    assert '"created": 0, "reset": 0, "deleted": 0' in out
    assert await demo_state(gateway) == second


async def test_the_demo_reports_hold_the_demo_todos(suite: Suite, gateway: ServiceProcess) -> None:
    await run_seed(suite, gateway)
    state = await demo_state(gateway)
    json_report = next(report_id for report_id, fmt, _ in state["reports"] if fmt == "json")
    async with await demo_client(gateway) as http:
        report = (await http.get(f"/reports/{json_report}")).json()
        file = await http.get(f"/reports/{json_report}/file")
    assert report["todo_count"] == len(state["todos"])
    assert file.status_code == 200 and file.headers["content-type"].startswith("application/json")
    assert {t["id"] for t in state["todos"]} <= {t["id"] for t in _todos_in(file.json())}


def _todos_in(body: Any) -> list[dict[str, Any]]:
    """The todo list of a JSON report (a list, or under a key of an object)."""
    if isinstance(body, list):
        return body
    return next(v for v in body.values() if isinstance(v, list) and v and isinstance(v[0], dict) and "id" in v[0])
