"""The read model: statistics follow the todo events, whatever their order or how often they arrive."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika

from tests.factories import create_todos
from tests.reports.client import request_report, wait_report, wait_summary
from tests.suite import Suite, User
from tests.support import TEST_BROKER_USER, assert_problem


async def test_summary_follows_creates_finishes_and_deletes(suite: Suite, new_user: User) -> None:
    async with suite.client(new_user) as todos, suite.client(new_user, base_url=suite.reports_url) as reports:
        empty = (await reports.get("/reports/summary")).json()
        assert empty["total"] == 0 and empty["median_seconds_to_finish"] is None and empty["updated_at"] is None
        assert len(empty["per_day"]) == 30 and all(d["created"] == d["finished"] == 0 for d in empty["per_day"])

        made = await create_todos(todos, [f"stat {i}" for i in range(5)])
        await wait_summary(reports, lambda s: s["total"] == 5 and s["open"] == 5)

        for todo in made[:3]:
            await todos.put(f"/todos/{todo['id']}/finish")
        summary = await wait_summary(reports, lambda s: s["finished"] == 3)
        assert summary["open"] == 2 and summary["total"] == 5
        assert summary["median_seconds_to_finish"] is not None and summary["median_seconds_to_finish"] >= 0
        today = summary["per_day"][-1]
        assert today["date"] == datetime.now(UTC).date().isoformat()
        assert today["created"] == 5 and today["finished"] == 3

        await todos.patch(f"/todos/{made[0]['id']}", json={"is_finished": False})  # reopened
        await todos.delete(f"/todos/{made[1]['id']}")  # a finished one
        await todos.delete(f"/todos/{made[4]['id']}")  # an open one
        summary = await wait_summary(reports, lambda s: s["total"] == 3)
        assert (summary["open"], summary["finished"]) == (2, 1)
        assert summary["updated_at"] is not None
        # The chart counts what exists too: created per day adds up to the total (issue 25).
        assert sum(d["created"] for d in summary["per_day"]) == summary["total"] == 3
        assert sum(d["finished"] for d in summary["per_day"]) == summary["finished"] == 1


def envelope(user: User, event_type: str, todo: dict[str, Any], event_id: str | None = None) -> bytes:
    return json.dumps(
        {
            "id": event_id or str(uuid.uuid4()),
            "type": event_type,
            "version": 1,
            "occurred_at": datetime.now(UTC).isoformat(),
            "producer": "todos",
            "subject": user.id,
            "data": todo,
        }
    ).encode()


async def publish(suite: Suite, messages: list[tuple[str, bytes]]) -> None:
    connection = await aio_pika.connect(suite.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(suite.exchange)
        for routing_key, body in messages:
            message = aio_pika.Message(body, content_type="application/json", user_id=TEST_BROKER_USER)
            await exchange.publish(message, routing_key=routing_key)


def todo_state(todo_id: str, created: datetime, updated: datetime, finished: datetime | None) -> dict[str, Any]:
    return {
        "id": todo_id,
        "content": "synthetic",
        "is_finished": finished is not None,
        "created_at": created.isoformat(),
        "updated_at": updated.isoformat(),
        "finished_at": finished.isoformat() if finished else None,
    }


async def test_redelivered_and_reordered_events_give_the_same_numbers(suite: Suite, new_user: User) -> None:
    start = datetime.now(UTC) - timedelta(hours=2)
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    created_a = envelope(new_user, "todo.created", todo_state(a, start, start, None))
    finished_a = envelope(
        new_user, "todo.finished", todo_state(a, start, start + timedelta(hours=1), start + timedelta(hours=1))
    )
    # b: its deletion arrives before its creation and update; it must stay deleted.
    deleted_b = envelope(new_user, "todo.deleted", todo_state(b, start, start + timedelta(minutes=5), None))
    created_b = envelope(new_user, "todo.created", todo_state(b, start, start, None))
    # c: finished, then the older "created" arrives late (and twice, with the same event id).
    finished_c = envelope(
        new_user, "todo.finished", todo_state(c, start, start + timedelta(minutes=30), start + timedelta(minutes=30))
    )
    created_c_id = str(uuid.uuid4())
    created_c = envelope(new_user, "todo.created", todo_state(c, start, start, None), created_c_id)
    await publish(
        suite,
        [
            ("todo.finished", finished_a),
            ("todo.created", created_a),
            ("todo.created", created_a),  # the same event redelivered
            ("todo.deleted", deleted_b),
            ("todo.created", created_b),
            ("todo.finished", finished_c),
            ("todo.created", created_c),
            ("todo.created", created_c),
        ],
    )
    async with suite.client(new_user, base_url=suite.reports_url) as reports:
        summary = await wait_summary(reports, lambda s: s["finished"] == 2)
        await asyncio.sleep(0.5)  # anything still in flight would change the numbers below
        summary = (await reports.get("/reports/summary")).json()
    assert (summary["total"], summary["open"], summary["finished"]) == (2, 0, 2)
    assert summary["median_seconds_to_finish"] == (3600 + 1800) / 2


async def test_deleted_account_purges_statistics_and_reports(suite: Suite, new_user: User) -> None:
    async with suite.client(new_user) as todos, suite.client(new_user, base_url=suite.reports_url) as reports:
        await create_todos(todos, ["soon gone"])
        await wait_summary(reports, lambda s: s["total"] == 1)
        report = await wait_report(reports, (await request_report(reports, "csv"))["id"])
        assert report["status"] == "done"
        await suite.delete_account(new_user)
        # The token still verifies (it is a signed JWT) until it expires; the data is gone.
        await wait_summary(reports, lambda s: s["total"] == 0 and s["updated_at"] is None)
        assert_problem(await reports.get(f"/reports/{report['id']}"), 404)
        assert_problem(await reports.get(f"/reports/{report['id']}/file"), 404)
        assert (await reports.get("/reports")).json()["items"] == []
        # ...and no new report can be queued for the deleted account.
        refused = await reports.post("/reports", json={"format": "csv"})
        assert_problem(refused, 403)
        assert (await reports.get("/reports")).json()["items"] == []
