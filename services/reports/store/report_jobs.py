"""SQL of report jobs and their files: what the API, the worker and the sweeper run on ``report_jobs``.

A job is ``queued`` (written with its ``report.requested`` event), ``running``
(a worker started an attempt), then ``done`` (its file stored) or ``failed``
(with a reason). ``progressed_at`` moves whenever something happens to an
unfinished job, so the sweeper can tell a stuck job from a slow one.

The module runs past 300 lines because it is all the SQL of one table and its files
(create, list with its keyset cursor, claim, finish, fail, sweep): the API, the worker and
the sweeper read the same rows, and the locking reasoning sits beside the queries.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.kit.db import Connection, Database
from services.reports.render import ReportFile
from services.reports.schemas import ReportFormat
from services.reports.store import read_model

# Jobs --------------------------------------------------------------------------------------------

_JOB_COLUMNS = (
    "id, owner_id, format, status, progress, todo_count, attempts, error, worker, created_at, started_at, finished_at,"
    " progressed_at, sweeps"
)


@dataclass(frozen=True)
class JobRow:
    id: UUID
    owner_id: UUID
    format: ReportFormat
    status: str
    progress: int
    todo_count: int | None
    attempts: int
    error: str | None
    worker: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    progressed_at: datetime
    sweeps: int

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


async def create_job(conn: Connection, owner: UUID, format: ReportFormat, *, max_unfinished: int) -> JobRow | None:
    """Store a queued job; ``None`` when the owner already has ``max_unfinished`` queued or running.

    Runs in the caller's transaction; a per-owner advisory lock makes the count and
    the insert one step, so concurrent requests cannot both slip under the bound.
    """
    await read_model.lock_owner(conn, owner)
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM deleted_users WHERE owner_id = $1)", owner):
        raise read_model.AccountDeleted(owner)
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


class BadCursor(ValueError):
    """A cursor this service did not hand out."""


def encode_cursor(row: JobRow) -> str:
    """The page position after ``row`` (its ``created_at`` and id), opaque to clients.

    Not signed (todos' cursors are): every listing query names its owner, so an altered
    cursor only moves within the caller's own reports.
    """
    raw = f"{row.created_at.isoformat()}|{row.id.hex}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, _, hex_id = raw.partition("|")
        created_at = datetime.fromisoformat(when)
        if created_at.tzinfo is None:
            raise ValueError("naive time")
        return created_at, UUID(hex=hex_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as error:
        raise BadCursor("malformed cursor") from error


async def list_jobs(
    conn: Connection, owner: UUID, *, limit: int, after: tuple[datetime, UUID] | None = None
) -> list[JobRow]:
    """The owner's reports, newest first, from after ``after`` (a keyset position) on."""
    rows = await conn.fetch(
        f"SELECT {_JOB_COLUMNS} FROM report_jobs WHERE owner_id = $1"
        " AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))"
        " ORDER BY created_at DESC, id DESC LIMIT $2",
        owner,
        limit,
        after[0] if after else None,
        after[1] if after else None,
    )
    return [JobRow.of(r) for r in rows]


async def get_job(conn: Connection, owner: UUID, job_id: UUID) -> JobRow | None:
    record = await conn.fetchrow(
        f"SELECT {_JOB_COLUMNS} FROM report_jobs WHERE owner_id = $1 AND id = $2", owner, job_id
    )
    return JobRow.of(record) if record else None


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


# The worker's per-job lock: a session-level advisory lock, so a SIGKILLed worker's is released when its
# connection ends. The sweeper tries the same key to tell a job a live worker holds from a stuck one.
_JOB_LOCK = "hashtextextended($1::uuid::text, 11)"


async def try_lock_job(conn: Connection, job_id: UUID) -> bool:
    """Take the job's lock for this connection's session; ``False`` when another worker holds it."""
    return bool(await conn.fetchval(f"SELECT pg_try_advisory_lock({_JOB_LOCK})", job_id))


async def unlock_job(conn: Connection, job_id: UUID) -> None:
    await conn.execute(f"SELECT pg_advisory_unlock({_JOB_LOCK})", job_id)


@asynccontextmanager
async def job_lock(db: Database, job_id: UUID) -> AsyncIterator[bool]:
    """Hold the job's lock on a pooled connection of its own; yields ``False`` when another worker holds it."""
    async with db.connection() as conn:
        if not await try_lock_job(conn, job_id):
            yield False
            return
        try:
            yield True
        finally:
            await unlock_job(conn, job_id)


# What the worker runs (by job id: the job arrived from our own queue) -----------------------------


async def start_job(conn: Connection, job_id: UUID, worker: str) -> JobRow | None:
    """Mark a job running for one more attempt; ``None`` when it is gone or already finished."""
    record = await conn.fetchrow(
        f"""
        UPDATE report_jobs SET status = 'running', attempts = attempts + 1, progress = 0, error = NULL,
                               worker = $2, started_at = clock_timestamp(),
                               progressed_at = clock_timestamp()
        WHERE id = $1 AND status IN ('queued', 'running')
        RETURNING {_JOB_COLUMNS}
        """,
        job_id,
        worker,
    )
    return JobRow.of(record) if record else None


async def set_progress(conn: Connection, job_id: UUID, progress: int, todo_count: int) -> None:
    await conn.execute(
        """
        UPDATE report_jobs SET progress = $2, todo_count = $3, progressed_at = clock_timestamp()
        WHERE id = $1 AND status = 'running'
        """,
        job_id,
        max(0, min(progress, 99)),
        todo_count,
    )


async def note_retry(conn: Connection, job_id: UUID, attempt: int, attempts: int, reason: str) -> None:
    """Show why a running job waits (todos away, say); a worker retrying is alive, so this counts as progress."""
    await conn.execute(
        "UPDATE report_jobs SET error = $2, progressed_at = clock_timestamp() WHERE id = $1 AND status = 'running'",
        job_id,
        f"retrying ({attempt} of {attempts} attempts failed): {reason}"[:1000],
    )


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


# What the sweeper runs (services/reports/sweeper.py) -------------------------------------------------

# One sweeper at a time over the whole table, whichever API instance gets there first.
_SWEEP_LOCK = 7_200_314_001


async def try_lock_sweep(conn: Connection) -> bool:
    """Take the sweep lock for the caller's transaction; ``False`` when another instance is sweeping."""
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _SWEEP_LOCK))


async def claim_stuck_jobs(conn: Connection, *, stale_seconds: float, limit: int) -> list[JobRow]:
    """Lock unfinished jobs without progress for ``stale_seconds`` that no live worker holds, oldest first.

    Runs in the caller's transaction. Rows are locked ``FOR UPDATE SKIP LOCKED``;
    a job whose worker lock is taken (a live worker on it, slow but alive) is left
    alone. Taking that lock here, for this transaction only, also keeps a worker
    from starting the job while the sweeper decides about it (it would requeue it).
    """
    records = await conn.fetch(
        f"""
        SELECT {_JOB_COLUMNS} FROM report_jobs
        WHERE status IN ('queued', 'running') AND progressed_at < clock_timestamp() - make_interval(secs => $1)
        ORDER BY progressed_at
        LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        stale_seconds,
        limit,
    )
    if not records:
        return []
    free = await conn.fetch(
        "SELECT id FROM unnest($1::uuid[]) AS id WHERE pg_try_advisory_xact_lock(hashtextextended(id::text, 11))",
        [r["id"] for r in records],
    )
    free_ids = {r["id"] for r in free}
    return [JobRow.of(r) for r in records if r["id"] in free_ids]


async def mark_swept(conn: Connection, job_ids: list[UUID]) -> None:
    """Count one more re-publication of each job and restart its progress clock (in the caller's transaction)."""
    await conn.execute(
        """
        UPDATE report_jobs SET sweeps = sweeps + 1, progressed_at = clock_timestamp()
        WHERE id = ANY($1::uuid[]) AND status IN ('queued', 'running')
        """,
        job_ids,
    )
