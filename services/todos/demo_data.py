"""``python -m services.todos seed-demo --owner UUID``: the demo account's todos, backdated.

The public API stamps ``created_at`` with the moment of the request, so a demo with a
month of history is written here, by the service that owns the data, against its own
database. Each change goes through the outbox in the same transaction, exactly as the
API's writes do, so the running service's relay publishes ``todo.created`` /
``todo.finished`` / ``todo.updated`` / ``todo.deleted`` and the reports read model follows.

Idempotent: ids are derived from (owner, name, index), times from today's UTC date, so
a second run on the same day changes nothing and publishes nothing. A run on a later day
moves the demo forward (it stays "the last 30 days"). The owner's other todos are
deleted: the demo account is reset to the demo, not merged with what was done in it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from uuid import UUID, uuid5

import asyncpg

from services.kit.db import Connection
from services.kit.logging import get_logger
from services.kit.migrations import migrate
from services.todos import events, page_cache, store
from services.todos.config import TodosSettings

# uuid5 namespace of demo todo ids (any fixed UUID; this one is random, chosen once).
DEMO_NAMESPACE = UUID("6f1c8f3e-2b7a-4c55-9a0e-3d9b1f6c2e41")

CONTENTS = (
    "Buy oat milk and coffee beans",
    "Book the dentist appointment",
    "Renew the passport",
    "Write the quarterly report outline",
    "Fix the squeaky bathroom door",
    "Call grandma",
    "Review Sam's pull request",
    "Pay the electricity bill",
    "Plan the weekend hike",
    "Return the library books",
    "Update the CV",
    "Water the plants",
    "Order a birthday present for Alex",
    "Clean out the garage",
    "Read chapter 4 of the Rust book",
    "Back up the laptop",
    "Cancel the unused streaming subscription",
    "Prepare slides for Monday's demo",
    "Take the car in for its service",
    "Sort the tax receipts",
    "Try the new pasta recipe",
    "Reply to the landlord's email",
    "Replace the bike's brake pads",
    "Sign up for the 10k run",
    "Defrost the freezer",
    "Set up the new printer",
    "Send the thank-you cards",
    "Research flights for the summer",
    "Learn three chords on the ukulele",
    "Change the smoke alarm batteries",
    "Organise the photo library",
    "Write the blog post about async Python",
    "Check the insurance renewal",
    "Donate old clothes",
    "Plan next week's meals",
    "Fix the flaky test in CI",
)


@dataclass(frozen=True)
class DemoTodo:
    id: UUID
    content: str
    created_at: datetime
    finished_at: datetime | None

    def row(self) -> store.TodoRow:
        """The todo as it looks once seeded (finished ones were last changed when they were finished)."""
        return store.TodoRow(
            id=self.id,
            content=self.content,
            is_finished=self.finished_at is not None,
            created_at=self.created_at,
            updated_at=self.finished_at or self.created_at,
            finished_at=self.finished_at,
            version=1,
        )

    def as_created(self) -> store.TodoRow:
        """The todo at the moment it was created (what ``todo.created`` announced)."""
        return store.TodoRow(self.id, self.content, False, self.created_at, self.created_at, None, 1)


def demo_todos(owner: UUID, name: str, today: date, count: int = len(CONTENTS)) -> list[DemoTodo]:
    """The demo: ``count`` todos over the 29 days before ``today`` (all in the past), about half finished.

    Pure: the same owner, name and day give the same todos.
    """
    midnight = datetime.combine(today, time(0), tzinfo=UTC)
    todos = []
    for i in range(count):
        days_ago = 29 - (i * 28) // max(count - 1, 1)  # 29 .. 1, oldest first
        created = midnight - timedelta(days=days_ago) + timedelta(hours=8 + (i * 7) % 11, minutes=(i * 17) % 60)
        # Older todos are more likely done; the last few days are mostly open.
        finished = days_ago >= 3 and i % 5 in (0, 2, 3)
        finished_at = created + timedelta(hours=1 + (i * 5) % 40, minutes=(i * 13) % 60) if finished else None
        content = CONTENTS[i % len(CONTENTS)]
        todos.append(DemoTodo(uuid5(DEMO_NAMESPACE, f"{owner}:{name}:{i}"), content, created, finished_at))
    return todos


@dataclass
class SeedResult:
    created: int = 0
    reset: int = 0
    deleted: int = 0
    unchanged: int = 0


async def seed(conn: Connection, owner: UUID, todos: Sequence[DemoTodo]) -> SeedResult:
    """Make ``owner``'s todos exactly ``todos``, in one transaction, each change with its event."""
    result = SeedResult()
    async with conn.transaction():
        if not await store.lock_owner_for_create(conn, owner):
            raise SystemExit(f"account {owner} was deleted; register the demo account again")
        for todo in todos:
            changed = await store.put_todo_state(conn, owner, todo.row())
            if changed is None:
                result.unchanged += 1
                continue
            row, inserted = changed
            if inserted:
                result.created += 1
                await events.todo_created(conn, owner, todo.as_created())
                if row.is_finished:
                    await events.todo_finished(conn, owner, row)
            else:
                result.reset += 1
                await events.todo_updated(conn, owner, row)
        for row in await store.delete_todos_except(conn, owner, [t.id for t in todos]):
            result.deleted += 1
            await events.todo_deleted(conn, owner, row)
    return result


async def seed_demo(settings: TodosSettings, args: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.todos seed-demo", description=__doc__)
    parser.add_argument("--owner", required=True, type=UUID, help="the demo user's id (GET /auth/me)")
    parser.add_argument("--name", default="demo", help="names this set of demo todos (part of their ids)")
    parser.add_argument("--count", type=int, default=len(CONTENTS), choices=range(1, 1001), metavar="1..1000")
    options = parser.parse_args(list(args))
    assert settings.database_url is not None
    from services.todos.app import MIGRATIONS  # the app module imports quart: only when needed

    await migrate(settings.database_url, MIGRATIONS, wait_seconds=settings.db_startup_timeout_seconds)
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        todos = demo_todos(options.owner, options.name, datetime.now(UTC).date(), options.count)
        result = await seed(conn, options.owner, todos)
    finally:
        await conn.close()
    if not await _invalidate_pages(settings, options.owner):
        return 1
    get_logger("todos.demo").info("demo todos seeded", owner=str(options.owner), **vars(result))
    print(json.dumps(vars(result)))
    return 0


async def _invalidate_pages(settings: TodosSettings, owner: UUID) -> bool:
    """After the seed's commit: no instance serves the owner's earlier pages (docs/caching.md)."""
    pages = page_cache.build(settings)
    try:
        await pages.invalidate(str(owner))
        if pages.lost_invalidations():
            print(
                f"the todos were seeded, but Redis ({settings.cache_redis_url}) did not take the cache "
                f"invalidation: lists may show the old todos for up to {settings.cache_page_ttl_seconds:.0f}s",
                file=sys.stderr,
            )
            return False
    finally:
        await pages.close()
    return True
