"""The report jobs and their files: what the API asks for by owner, what the worker runs by job id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.kit.db import Connection
from services.reports.store.owners import AccountDeleted, lock_owner

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
    await lock_owner(conn, owner)
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


async def note_retry(conn: Connection, job_id: UUID, note: str) -> None:
    """Show the owner why a running job is waiting (its ``error`` while it retries)."""
    await conn.execute("UPDATE report_jobs SET error = $2 WHERE id = $1 AND status = 'running'", job_id, note)


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
