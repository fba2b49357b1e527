"""The worker under faults: killed mid-job, todos down for a while or for good, several workers at once."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from typing import Any

import pytest

from tests.reports.client import CompletedEvents, add_todos, hold_mid_fetch, reports_api, request_report, wait_report
from tests.reports.conftest import Lab, StartWorker
from tests.suite import Suite, User
from tests.support import assert_problem

pytestmark = pytest.mark.slow


def close_broker_connections(name_prefix: str) -> int:
    """Close, from the broker's side, the client connections whose ``connection_name`` starts with ``name_prefix``."""

    def rabbitmqctl(*args: str) -> str:
        return subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, text=True, timeout=30).stdout

    listed = rabbitmqctl("list_connections", "pid", "client_properties", "--no-table-headers", "--quiet")
    pids = [line.split("\t")[0] for line in listed.splitlines() if f'{{"connection_name","{name_prefix}' in line]
    for pid in pids:
        rabbitmqctl("close_connection", pid, "closed by a test")
    return len(pids)


async def test_a_worker_consumes_again_after_its_broker_connection_drops_and_stops_with_0(
    suite: Suite, lab: Lab, workers: StartWorker, new_user: User
) -> None:
    worker = await workers("phoenix")
    queue = suite.jobs_queue(lab.reports_name)
    service = suite.envs[lab.reports_name]["SERVICE_NAME"]
    assert await asyncio.to_thread(close_broker_connections, f"{service}:phoenix-") == 1
    await suite.wait_consumers(queue, 1, worker)  # declared and consumed again on the new connection
    async with reports_api(lab, new_user) as reports:
        done = await wait_report(reports, (await request_report(reports, "json"))["id"])
    assert done["status"] == "done", done
    worker.signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.proc.wait, 20) == 0
    assert '"worker stopped"' in worker.logs()


async def test_todos_down_during_a_job_is_retried_until_it_returns(
    lab: Lab, workers: StartWorker, new_user: User
) -> None:
    await workers("patient")
    await add_todos(lab, new_user, [f"patience {i}" for i in range(25)], concurrency=6)
    async with reports_api(lab, new_user) as reports:
        running = await hold_mid_fetch(lab, reports, "csv")
        assert running["error"].endswith("the todos service could not be reached"), running
        assert lab.todos_url.removeprefix("http://") not in running["error"]  # no internal host or port
        lab.start_todos()
        done = await wait_report(reports, running["id"])
    assert done["status"] == "done" and done["todo_count"] == 25 and done["error"] is None, done


async def test_todos_down_past_the_budget_fails_the_job_with_a_reason(
    lab: Lab, workers: StartWorker, new_user: User
) -> None:
    await workers("impatient", FETCH_ATTEMPTS="3")
    async with reports_api(lab, new_user) as reports:
        lab.stop_todos()
        report = await request_report(reports, "pdf")
        failed = await wait_report(reports, report["id"])
        assert failed["status"] == "failed", failed
        assert failed["error"] == "the todos service could not be reached (3 attempts)", failed
        assert "127.0.0.1" not in failed["error"]
        assert failed["finished_at"] is not None and failed["file_url"] is None
        assert (await reports.get(f"/reports/{report['id']}/file")).status_code == 409


async def test_a_worker_killed_mid_job_is_replaced_and_the_job_completes_once(
    lab: Lab,
    workers: StartWorker,
    new_user: User,
    completed_events: CompletedEvents,
) -> None:
    doomed = await workers("doomed")
    await add_todos(lab, new_user, [f"survivor {i}" for i in range(15)], concurrency=6)
    async with reports_api(lab, new_user) as reports:
        report = await hold_mid_fetch(lab, reports, "pdf")  # so the kill lands while the job runs
        doomed.proc.kill()
        doomed.proc.wait(5)
        lab.start_todos()
        await workers("heir")
        done = await wait_report(reports, report["id"])
        assert done["status"] == "done" and done["todo_count"] == 15, done
        assert (await reports.get(f"/reports/{report['id']}/file")).headers["content-type"] == "application/pdf"
    rows = await lab.fetch("SELECT attempts, worker FROM report_jobs WHERE id = $1::uuid", report["id"])
    assert rows[0]["attempts"] == 2 and rows[0]["worker"].startswith("heir"), dict(rows[0])
    files = await lab.fetch("SELECT count(*) AS n FROM report_files WHERE job_id = $1::uuid", report["id"])
    assert files[0]["n"] == 1
    for _ in range(100):
        mine = [e for e in await completed_events() if e["data"]["id"] == report["id"]]
        if mine:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)  # a second completion, if there were one, would be published by now
    mine = [e for e in await completed_events() if e["data"]["id"] == report["id"]]
    assert len(mine) == 1 and mine[0]["data"]["status"] == "done" and mine[0]["subject"] == new_user.id


async def test_two_workers_share_a_burst_of_jobs(lab: Lab, workers: StartWorker, new_user: User, bob: User) -> None:
    await workers("left")
    await workers("right")
    for user in (new_user, bob):
        await add_todos(lab, user, [f"burst {i}" for i in range(40)], concurrency=6)
    ids: list[str] = []
    for user in (new_user, bob):
        async with reports_api(lab, user) as reports:
            ids += [(await request_report(reports, fmt))["id"] for fmt in ("csv", "json", "pdf", "csv", "json")]
    finished: list[dict[str, Any]] = []
    for user in (new_user, bob):
        async with reports_api(lab, user) as reports:
            for report in (await reports.get("/reports")).json()["items"]:
                if report["id"] in ids:
                    finished.append(await wait_report(reports, report["id"]))
    assert len(finished) == 10 and all(r["status"] == "done" for r in finished), finished
    rows = await lab.fetch(
        "SELECT worker, count(*) AS n FROM report_jobs WHERE id = ANY($1::uuid[]) AND status = 'done' GROUP BY worker",
        ids,
    )
    done_by = {row["worker"].split("-")[0]: row["n"] for row in rows}
    assert sum(done_by.values()) == 10
    assert set(done_by) == {"left", "right"}, done_by


async def test_a_job_that_keeps_killing_workers_is_failed_not_retried_forever(
    lab: Lab, workers: StartWorker, new_user: User
) -> None:
    async with reports_api(lab, new_user) as reports:
        report = await request_report(reports, "json")
        # As if three workers had died during this job (the message is waiting: no worker runs yet).
        await lab.fetch("UPDATE report_jobs SET attempts = 3, status = 'running' WHERE id = $1::uuid", report["id"])
        await workers("judge")
        failed = await wait_report(reports, report["id"])
    assert failed["status"] == "failed" and failed["error"].startswith("gave up after 3 unfinished attempts"), failed


async def test_a_report_past_the_todo_bound_fails_saying_so(lab: Lab, workers: StartWorker, new_user: User) -> None:
    await workers("strict", MAX_REPORT_TODOS="5")
    await add_todos(lab, new_user, [f"too many {i}" for i in range(12)], concurrency=6)
    async with reports_api(lab, new_user) as reports:
        failed = await wait_report(reports, (await request_report(reports, "csv"))["id"])
    assert failed["status"] == "failed" and failed["error"] == "more than 5 todos: too many for one report", failed


async def test_unfinished_reports_are_bounded_per_user(suite: Suite, lab: Lab, new_user: User) -> None:
    # No worker runs here, so every accepted job stays queued and the bound (20 in the lab) is exact.
    async with reports_api(lab, new_user) as reports:
        for _ in range(20):
            await request_report(reports, "csv")
        body = assert_problem(await reports.post("/reports", json={"format": "pdf"}), 429)
        assert "20 reports queued or running" in body["detail"]
        listed = (await reports.get("/reports", params={"limit": 100})).json()["items"]
        assert len(listed) == 20 and {r["status"] for r in listed} == {"queued"}
    async with suite.client(new_user, base_url=lab.reports_url, token=await suite.login(new_user)) as again:
        assert_problem(await again.post("/reports", json={"format": "json"}), 429)
    await lab.purge_jobs_queue()  # so no later worker renders them
