"""Small helpers the reports tests share: give a user todos, request a report, poll it or the summary."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import httpx

from tests.factories import create_todos

if TYPE_CHECKING:
    from tests.reports.conftest import Lab
    from tests.suite import User


# The completed_events fixture: call it to read the report.completed events published so far.
CompletedEvents = Callable[[], Awaitable[list[dict[str, Any]]]]


def reports_api(lab: Lab, user: User) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    """An HTTP client of the lab's reports service that carries ``user``'s token."""
    return lab.suite.client(user, base_url=lab.reports_url)


async def add_todos(lab: Lab, user: User, contents: list[str], concurrency: int = 16) -> None:
    """Create ``contents`` as ``user``'s todos in the lab's todos service."""
    async with lab.suite.client(user, base_url=lab.todos_url) as todos:
        await create_todos(todos, contents, concurrency=concurrency)


async def request_report(reports: httpx.AsyncClient, format: str) -> dict[str, Any]:
    resp = await reports.post("/reports", json={"format": format})
    assert resp.status_code == 202, resp.text
    body = resp.json()
    assert resp.headers["location"] == f"/reports/{body['id']}"
    assert body["status"] == "queued" and body["format"] == format
    return dict(body)


async def wait_report(
    reports: httpx.AsyncClient, report_id: str, until: tuple[str, ...] = ("done", "failed"), timeout: float = 30
) -> dict[str, Any]:
    """Poll ``GET /reports/{id}`` until its status is one of ``until``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = (await reports.get(f"/reports/{report_id}")).json()
        if body["status"] in until:
            return dict(body)
        assert asyncio.get_running_loop().time() < deadline, f"report still {body} after {timeout}s"
        await asyncio.sleep(0.05)


async def wait_summary(
    reports: httpx.AsyncClient, check: Callable[[dict[str, Any]], bool], timeout: float = 20
) -> dict[str, Any]:
    """Poll ``GET /reports/summary`` until ``check`` holds (events arrive eventually)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        resp = await reports.get("/reports/summary")
        assert resp.status_code == 200, resp.text
        body = resp.json()
        if check(body):
            return dict(body)
        assert asyncio.get_running_loop().time() < deadline, f"summary still {body} after {timeout}s"
        await asyncio.sleep(0.1)


async def wait_retrying(reports: httpx.AsyncClient, report_id: str, timeout: float = 20) -> dict[str, Any]:
    """Poll until the job is running and says it is retrying (the todos service is away)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        body = (await reports.get(f"/reports/{report_id}")).json()
        if body["status"] == "running" and (body["error"] or "").startswith("retrying"):
            return dict(body)
        assert body["status"] in ("queued", "running"), body
        assert asyncio.get_running_loop().time() < deadline, f"report still {body} after {timeout}s"
        await asyncio.sleep(0.05)


async def hold_mid_fetch(lab: Lab, reports: httpx.AsyncClient, format: str) -> dict[str, Any]:
    """Stop the lab's todos, then request a report: its job runs and retries its fetch until todos is back.
    Returns the report once it says it is retrying."""
    lab.stop_todos()
    report = await request_report(reports, format)
    return await wait_retrying(reports, report["id"])
