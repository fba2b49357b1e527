"""All SQL of the reports service: the read model, the jobs and their files. Every user query names its owner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

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
    """The owner's statistics, derived from the todo rows (UTC days, oldest first)."""
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
            FROM todo_facts WHERE owner_id = $1 AND created_at >= $2
            UNION ALL
            SELECT (finished_at AT TIME ZONE 'UTC')::date, 0, 1
            FROM todo_facts WHERE owner_id = $1 AND finished_at >= $2
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


async def _lock_owner(conn: Connection, owner: UUID) -> None:
    # One transaction at a time per owner for job creation and purging: a job is either
    # created before the purge (and purged with the rest) or refused after it.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 7))", owner)


async def purge_owner(conn: Connection, owner: UUID) -> dict[str, int]:
    """Forget a deleted user: statistics, jobs and files; and ignore their late events."""
    await _lock_owner(conn, owner)
    await conn.execute("INSERT INTO deleted_users (owner_id) VALUES ($1) ON CONFLICT DO NOTHING", owner)
    facts = await conn.execute("DELETE FROM todo_facts WHERE owner_id = $1", owner)
    jobs = await conn.execute("DELETE FROM report_jobs WHERE owner_id = $1", owner)  # files cascade
    return {"todos": int(facts.split()[-1]), "jobs": int(jobs.split()[-1])}


# Jobs --------------------------------------------------------------------------------------------

_JOB_COLUMNS = (
    "id, owner_id, format, status, progress, todo_count, attempts, error, worker, created_at, started_at, finished_at"
)


@dataclass(frozen=True)
class JobRow:
    id: UUID
    owner_id: UUID
    format: str
    status: str
    progress: int
    todo_count: int | None
    attempts: int
    error: str | None
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, record: asyncpg.Record) -> JobRow:
        return cls(**dict(record))

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed")

    def public(self) -> dict[str, Any]:
        """The job as the API shows it."""
        return {
            "id": self.id,
            "format": self.format,
            "status": self.status,
            "progress": self.progress,
            "todo_count": self.todo_count,
            "error": self.error,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "file_url": f"/reports/{self.id}/file" if self.status == "done" else None,
        }


async def create_job(conn: Connection, owner: UUID, format: str, *, max_unfinished: int) -> JobRow | None:
    """Store a queued job; ``None`` when the owner already has ``max_unfinished`` queued or running.

    Runs in the caller's transaction; a per-owner advisory lock makes the count and
    the insert one step, so concurrent requests cannot both slip under the bound.
    """
    await _lock_owner(conn, owner)
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM deleted_users WHERE owner_id = $1)", owner):
        raise AccountDeleted(owner)
    unfinished = await conn.fetchval(
        "SELECT count(*) FROM report_jobs WHERE owner_id = $1 AND status IN ('queued', 'running')", owner
    )
    if unfinished >= max_unfinished:
        return None
    record = await conn.fetchrow(
        f"INSERT INTO report_jobs (owner_id, format) VALUES ($1, $2) RETURNING {_JOB_COLUMNS}", owner, format
    )
    assert record is not None
    return JobRow.of(record)


async def list_jobs(conn: Connection, owner: UUID, *, limit: int) -> list[JobRow]:
    rows = await conn.fetch(
        f"SELECT {_JOB_COLUMNS} FROM report_jobs WHERE owner_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2",
        owner,
        limit,
    )
    return [JobRow.of(r) for r in rows]


async def get_job(conn: Connection, owner: UUID, job_id: UUID) -> JobRow | None:
    record = await conn.fetchrow(
        f"SELECT {_JOB_COLUMNS} FROM report_jobs WHERE owner_id = $1 AND id = $2", owner, job_id
    )
    return JobRow.of(record) if record else None


@dataclass(frozen=True)
class ReportFile:
    content_type: str
    filename: str
    body: bytes


async def get_file(conn: Connection, owner: UUID, job_id: UUID) -> ReportFile | None:
    record = await conn.fetchrow(
        """
        SELECT f.content_type, f.filename, f.body FROM report_files f JOIN report_jobs j ON j.id = f.job_id
        WHERE j.owner_id = $1 AND j.id = $2 AND j.status = 'done'
        """,
        owner,
        job_id,
    )
    return ReportFile(record["content_type"], record["filename"], bytes(record["body"])) if record else None


# What the worker runs (by job id: the job arrived from our own queue) -----------------------------


async def start_job(conn: Connection, job_id: UUID, worker: str) -> JobRow | None:
    """Mark a job running for one more attempt; ``None`` when it is gone or already finished."""
    record = await conn.fetchrow(
        f"""
        UPDATE report_jobs SET status = 'running', attempts = attempts + 1, progress = 0, error = NULL,
                               worker = $2, started_at = clock_timestamp()
        WHERE id = $1 AND status IN ('queued', 'running')
        RETURNING {_JOB_COLUMNS}
        """,
        job_id,
        worker,
    )
    return JobRow.of(record) if record else None


async def set_progress(conn: Connection, job_id: UUID, progress: int, todo_count: int) -> None:
    await conn.execute(
        "UPDATE report_jobs SET progress = $2, todo_count = $3 WHERE id = $1 AND status = 'running'",
        job_id,
        max(0, min(progress, 99)),
        todo_count,
    )


async def expected_todos(conn: Connection, owner: UUID) -> int:
    """How many todos the read model knows for ``owner`` (to turn pages into a percentage)."""
    count = await conn.fetchval("SELECT count(*) FROM todo_facts WHERE owner_id = $1 AND NOT deleted", owner)
    return int(count)


async def complete_job(conn: Connection, job_id: UUID, file: ReportFile, todo_count: int) -> JobRow | None:
    """Store the file and mark the job done (in the caller's transaction); ``None`` if it is not running."""
    record = await conn.fetchrow(
        f"""
        UPDATE report_jobs SET status = 'done', progress = 100, todo_count = $2, error = NULL,
                               finished_at = clock_timestamp()
        WHERE id = $1 AND status = 'running'
        RETURNING {_JOB_COLUMNS}
        """,
        job_id,
        todo_count,
    )
    if record is None:
        return None
    await conn.execute(
        """
        INSERT INTO report_files (job_id, content_type, filename, body) VALUES ($1, $2, $3, $4)
        ON CONFLICT (job_id) DO UPDATE SET content_type = EXCLUDED.content_type, filename = EXCLUDED.filename,
                                           body = EXCLUDED.body, created_at = now()
        """,
        job_id,
        file.content_type,
        file.filename,
        file.body,
    )
    return JobRow.of(record)


async def fail_job(conn: Connection, job_id: UUID, reason: str) -> JobRow | None:
    """Mark the job failed with a reason (in the caller's transaction); ``None`` if already finished or gone."""
    record = await conn.fetchrow(
        f"""
        UPDATE report_jobs SET status = 'failed', error = $2, finished_at = clock_timestamp()
        WHERE id = $1 AND status IN ('queued', 'running')
        RETURNING {_JOB_COLUMNS}
        """,
        job_id,
        reason[:1000],
    )
    return JobRow.of(record) if record else None


async def job_by_id(conn: Connection, job_id: UUID) -> JobRow | None:
    record = await conn.fetchrow(f"SELECT {_JOB_COLUMNS} FROM report_jobs WHERE id = $1", job_id)
    return JobRow.of(record) if record else None
