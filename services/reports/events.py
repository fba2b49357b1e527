"""The reports service's events: what it publishes (one function per type) and what it consumes.

Published: ``report.requested`` (routed to the jobs queue, see ``jobs.py``) when a job
is queued (by the API, and again by the sweeper for a stuck one), and
``report.completed`` when a job finishes, done or failed (by the worker or the sweeper).

Consumed: todo events into the read model; ``user.deleted`` purges. Handlers run in
the kit's inbox transaction (a redelivered event is skipped), and each one writes the
todo's whole state as the event carries it, newest ``updated_at`` winning, so reordered
events land on the same numbers.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.kit.db import Connection
from services.kit.events import Event, Handler, outbox
from services.kit.logging import get_logger
from services.reports.schemas import TodoEventData
from services.reports.store import read_model, report_jobs

log = get_logger("reports.events")

REPORT_REQUESTED = "report.requested"
REPORT_COMPLETED = "report.completed"


# Published --------------------------------------------------------------------------------------


async def report_requested(conn: Connection, job: report_jobs.JobRow) -> None:
    """A job is queued: the worker that takes it from the jobs queue renders it."""
    await outbox.add(conn, REPORT_REQUESTED, subject=job.owner_id, data={"job_id": job.id, "format": job.format})


async def report_completed(conn: Connection, job: report_jobs.JobRow, size: int | None) -> None:
    """A job finished: done (``size`` bytes of file) or failed (no size; ``error`` says why)."""
    data: dict[str, Any] = {
        "id": job.id,
        "format": job.format,
        "status": job.status,
        "todo_count": job.todo_count,
        "size": size,
        "error": job.error,
        "finished_at": job.finished_at,
    }
    await outbox.add(conn, REPORT_COMPLETED, subject=job.owner_id, data=data)


# Consumed ---------------------------------------------------------------------------------------


def _fact(event: Event) -> read_model.TodoFact:
    data = TodoEventData.model_validate(event.data)
    return read_model.TodoFact(data.id, data.is_finished, data.created_at, data.updated_at, data.finished_at)


async def on_todo_changed(conn: Connection, event: Event) -> None:
    await read_model.apply_todo(conn, UUID(event.subject), _fact(event))


async def on_todo_deleted(conn: Connection, event: Event) -> None:
    await read_model.apply_todo(conn, UUID(event.subject), _fact(event), deleted=True)


async def on_user_deleted(conn: Connection, event: Event) -> None:
    purged = await read_model.purge_owner(conn, UUID(event.subject))
    log.info("user purged", user_id=event.subject, **purged)


HANDLERS: dict[str, Handler] = {
    "todo.created": on_todo_changed,
    "todo.updated": on_todo_changed,
    "todo.finished": on_todo_changed,
    "todo.deleted": on_todo_deleted,
    "user.deleted": on_user_deleted,
}
