"""The job sweeper: a stranded job is published again, then failed with a reason; a live worker's job is left alone.

The lab's reports service sweeps every 0.5 s with the default bounds (5 min
without progress, 1 h in all, 3 sweeps); the tests age a job in the database
instead of waiting for the bounds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from services.kit.events import outbox
from services.reports.events import REPORT_REQUESTED
from services.reports.store import report_jobs
from services.reports.sweeper import STUCK_REASON
from tests.reports.client import CompletedEvents, add_todos, hold_mid_fetch, reports_api, request_report, wait_report
from tests.reports.conftest import Lab, StartWorker
from tests.suite import User

pytestmark = pytest.mark.slow

AGE = "UPDATE report_jobs SET progressed_at = now() - interval '6 minutes' WHERE id = ANY($1::uuid[])"


async def sweeps(lab: Lab, job_id: str) -> int:
    return int((await lab.fetch("SELECT sweeps FROM report_jobs WHERE id = $1::uuid", job_id))[0]["sweeps"])


async def lose_messages(lab: Lab, count: int) -> None:
    """Wait until the relay has published ``count`` job messages, then drop them (as a lost queue would)."""
    await until(lambda: _at_least(lab.jobs_waiting(), count), f"{count} job messages")
    await lab.purge_jobs_queue()


async def until(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_a_job_whose_message_was_lost_is_published_again_and_completes_once(
    lab: Lab, workers: StartWorker, new_user: User
) -> None:
    await add_todos(lab, new_user, [f"swept {i}" for i in range(3)])
    async with reports_api(lab, new_user) as reports:
        report = await request_report(reports, "csv")  # no worker runs: the message waits in the queue
        await lose_messages(lab, 1)
        await lab.fetch(AGE, [report["id"]])
        await until(lambda: _equals(sweeps(lab, report["id"]), 1), "the sweep")
        await until(lambda: _at_least(lab.jobs_waiting(), 1), "the re-published message")
        assert (await reports.get(f"/reports/{report['id']}")).json()["status"] == "queued"
        await workers("sweepers-heir")
        done = await wait_report(reports, report["id"])
    assert done["status"] == "done" and done["todo_count"] == 3, done
    row = (await lab.fetch("SELECT attempts, sweeps FROM report_jobs WHERE id = $1::uuid", report["id"]))[0]
    print(f"\nlost job message: sweeps={row['sweeps']} attempts={row['attempts']} status={done['status']}")
    assert (row["attempts"], row["sweeps"]) == (1, 1)


async def test_a_job_stuck_past_its_bounds_is_failed_with_a_fixed_reason(
    lab: Lab,
    new_user: User,
    completed_events: CompletedEvents,
) -> None:
    async with reports_api(lab, new_user) as reports:
        too_old, too_often = [(await request_report(reports, f))["id"] for f in ("pdf", "json")]
        await lose_messages(lab, 2)
        await lab.fetch(
            "UPDATE report_jobs SET created_at = now() - interval '2 hours', status = 'running', attempts = 1 "
            "WHERE id = $1::uuid",
            too_old,
        )
        await lab.fetch("UPDATE report_jobs SET sweeps = 3 WHERE id = $1::uuid", too_often)
        await lab.fetch(AGE, [too_old, too_often])
        failed = [await wait_report(reports, job_id, until=("failed",), timeout=15) for job_id in (too_old, too_often)]
    assert all(f["error"] == STUCK_REASON and f["finished_at"] is not None for f in failed), failed

    async def both_completed() -> bool:
        return {e["data"]["id"] for e in await completed_events()} >= {too_old, too_often}

    await until(both_completed, "report.completed of both jobs")
    mine = [e for e in await completed_events() if e["data"]["id"] in (too_old, too_often)]
    assert len(mine) == 2 and {e["data"]["status"] for e in mine} == {"failed"}
    assert await lab.jobs_waiting() == 0  # failed, not published again


async def test_a_job_a_live_worker_holds_is_not_swept(lab: Lab, new_user: User) -> None:
    async with reports_api(lab, new_user) as reports:
        held, free = [(await request_report(reports, "csv"))["id"] for _ in range(2)]
    await lose_messages(lab, 2)
    worker = await asyncpg.connect(lab.suite.envs[lab.reports_name]["DATABASE_URL"])  # as a worker would
    try:
        assert await report_jobs.try_lock_job(worker, held)
        await lab.fetch(AGE, [held, free])  # both stale in the same instant: one sweep sees both
        await until(lambda: _equals(sweeps(lab, free), 1), "the sweep of the free job")
        assert await sweeps(lab, held) == 0
        await report_jobs.unlock_job(worker, held)
        await lab.fetch(AGE, [held])
        await until(lambda: _equals(sweeps(lab, held), 1), "the sweep once the worker let go")
    finally:
        await worker.close()
        await lab.purge_jobs_queue()


async def test_a_duplicate_message_for_a_running_job_is_harmless(
    lab: Lab,
    workers: StartWorker,
    new_user: User,
    completed_events: CompletedEvents,
) -> None:
    first, second = await workers("busy"), await workers("idle")
    await add_todos(lab, new_user, [f"twice {i}" for i in range(12)])
    async with reports_api(lab, new_user) as reports:
        report = await hold_mid_fetch(lab, reports, "json")
        # What a sweep writes for a job it thinks stuck: a second report.requested, through the outbox.
        conn = await asyncpg.connect(lab.suite.envs[lab.reports_name]["DATABASE_URL"])
        try:
            async with conn.transaction():
                await outbox.add(
                    conn, REPORT_REQUESTED, subject=new_user.id, data={"job_id": report["id"], "format": "json"}
                )
        finally:
            await conn.close()

        async def requeued() -> bool:
            return any("job held by another worker; requeued" in w.logs() for w in (first, second))

        await until(requeued, "the duplicate reaching the other worker")
        lab.start_todos()
        done = await wait_report(reports, report["id"])
        assert done["status"] == "done" and done["todo_count"] == 12, done
    await until(lambda: _settled(first.logs() + second.logs()), "both messages settled")
    row = (await lab.fetch("SELECT attempts FROM report_jobs WHERE id = $1::uuid", report["id"]))[0]
    files = (await lab.fetch("SELECT count(*) AS n FROM report_files WHERE job_id = $1::uuid", report["id"]))[0]
    await asyncio.sleep(0.5)  # a second completion, if there were one, would be published by now
    mine = [e for e in await completed_events() if e["data"]["id"] == report["id"]]
    print(f"\nduplicate of a running job: attempts={row['attempts']} files={files['n']} completions={len(mine)}")
    assert row["attempts"] == 1 and files["n"] == 1 and len(mine) == 1


async def _at_least(value: Awaitable[int], minimum: int) -> bool:
    return await value >= minimum


async def _equals(value: Awaitable[int], expected: int) -> bool:
    return await value == expected


async def _settled(logs: str) -> bool:
    return '"outcome": "done"' in logs and '"outcome": "skipped"' in logs
