"""Small helpers the reports tests share: request a report, poll it or the summary."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx


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
