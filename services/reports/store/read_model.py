"""SQL of the reports read model and of purging a user; jobs and files are in :mod:`.report_jobs`.

Every user query names its owner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

from services.kit.db import Connection

SUMMARY_DAYS = 30

# Read model ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TodoFact:
    """A todo as one event describes it."""

    id: UUID
    is_finished: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


async def apply_todo(conn: Connection, owner: UUID, fact: TodoFact, *, deleted: bool = False) -> bool:
    """Record what an event says about a todo; ``False`` when it changes nothing.

    The newest state wins (by the todo's ``updated_at``), whatever order events
    arrive in; a deletion is final; a deleted user's late events are ignored.
    """
    status = await conn.execute(
        """
        INSERT INTO todo_facts AS f (owner_id, todo_id, is_finished, created_at, finished_at, updated_at, deleted)
        SELECT $1, $2, $3, $4, $5, $6, $7
        WHERE NOT EXISTS (SELECT 1 FROM deleted_users WHERE owner_id = $1)
        ON CONFLICT (owner_id, todo_id) DO UPDATE SET
            is_finished = EXCLUDED.is_finished,
            finished_at = EXCLUDED.finished_at,
            updated_at = EXCLUDED.updated_at,
            deleted = EXCLUDED.deleted,
            applied_at = now()
        WHERE NOT f.deleted AND (EXCLUDED.deleted OR EXCLUDED.updated_at >= f.updated_at)
        """,
        owner,
        fact.id,
        fact.is_finished,
        fact.created_at,
        fact.finished_at,
        fact.updated_at,
        deleted,
    )
    return status.split()[-1] != "0"


@dataclass(frozen=True)
class DayCount:
    date: date
    created: int
    finished: int


@dataclass(frozen=True)
class Summary:
    total: int
    open: int
    finished: int
    median_seconds_to_finish: float | None
    per_day: list[DayCount]
    updated_at: datetime | None


async def summary(conn: Connection, owner: UUID, *, today: date | None = None) -> Summary:
    """The owner's statistics, derived from the todo rows (UTC days, oldest first).

    Like the totals, ``per_day`` counts only todos that exist now: a deleted todo leaves the
    chart too, so the days' "created" add up to ``total`` (for todos of the last 30 days).
    """
    today = today or datetime.now(UTC).date()
    first_day = today - timedelta(days=SUMMARY_DAYS - 1)
    since = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
    totals = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE NOT deleted) AS total,
               count(*) FILTER (WHERE NOT deleted AND NOT is_finished) AS open,
               count(*) FILTER (WHERE NOT deleted AND is_finished) AS finished,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM finished_at - created_at))
                   FILTER (WHERE NOT deleted AND is_finished AND finished_at IS NOT NULL) AS median,
               max(applied_at) AS updated_at
        FROM todo_facts WHERE owner_id = $1
        """,
        owner,
    )
    assert totals is not None
    rows = await conn.fetch(
        """
        SELECT day, sum(created)::int AS created, sum(finished)::int AS finished FROM (
            SELECT (created_at AT TIME ZONE 'UTC')::date AS day, 1 AS created, 0 AS finished
            FROM todo_facts WHERE owner_id = $1 AND NOT deleted AND created_at >= $2
            UNION ALL
            SELECT (finished_at AT TIME ZONE 'UTC')::date, 0, 1
            FROM todo_facts WHERE owner_id = $1 AND NOT deleted AND finished_at >= $2
        ) AS activity
        GROUP BY day
        """,
        owner,
        since,
    )
    by_day = {row["day"]: (row["created"], row["finished"]) for row in rows}
    per_day = []
    for offset in range(SUMMARY_DAYS):
        day = first_day + timedelta(days=offset)
        created, finished = by_day.get(day, (0, 0))
        per_day.append(DayCount(day, created, finished))
    median = totals["median"]
    return Summary(
        total=totals["total"],
        open=totals["open"],
        finished=totals["finished"],
        median_seconds_to_finish=float(median) if median is not None else None,
        per_day=per_day,
        updated_at=totals["updated_at"],
    )


class AccountDeleted(Exception):
    """The owner's account was deleted; nothing new is stored for it."""


async def lock_owner(conn: Connection, owner: UUID) -> None:
    """Serialise job creation and purging per owner (in the caller's transaction)."""
    # One transaction at a time per owner for job creation and purging: a job is either
    # created before the purge (and purged with the rest) or refused after it.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 7))", owner)


async def purge_owner(conn: Connection, owner: UUID) -> dict[str, int]:
    """Forget a deleted user: statistics, jobs and files; and ignore their late events."""
    await lock_owner(conn, owner)
    await conn.execute("INSERT INTO deleted_users (owner_id) VALUES ($1) ON CONFLICT DO NOTHING", owner)
    facts = await conn.execute("DELETE FROM todo_facts WHERE owner_id = $1", owner)
    jobs = await conn.execute("DELETE FROM report_jobs WHERE owner_id = $1", owner)  # files cascade
    return {"todos": int(facts.split()[-1]), "jobs": int(jobs.split()[-1])}


async def expected_todos(conn: Connection, owner: UUID) -> int:
    """How many todos the read model knows for ``owner`` (to turn pages into a percentage)."""
    count = await conn.fetchval("SELECT count(*) FROM todo_facts WHERE owner_id = $1 AND NOT deleted", owner)
    return int(count)
