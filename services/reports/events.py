"""What the reports service consumes: todo events into the read model; ``user.deleted`` purges.

Handlers run in the kit's inbox transaction (a redelivered event is skipped), and
each one writes the todo's whole state as the event carries it, newest
``updated_at`` winning, so reordered events land on the same numbers.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.kit.db import Connection
from services.kit.events import Event
from services.kit.logging import get_logger
from services.reports import jobs_store, store
from services.reports.schemas import TodoEventData

log = get_logger("reports.events")

# What the API publishes for the worker (routed to the jobs queue) and what the worker publishes.
REPORT_REQUESTED = "report.requested"
REPORT_COMPLETED = "report.completed"


def requested_data(job: jobs_store.JobRow) -> dict[str, Any]:
    """What a ``report.requested`` event carries (the API writes it; the sweeper writes it again)."""
    return {"job_id": job.id, "format": job.format}


def completed_data(job: jobs_store.JobRow, size: int | None) -> dict[str, Any]:
    """What a ``report.completed`` event carries (``size`` of the file; ``None`` when failed)."""
    return {
        "id": job.id,
        "format": job.format,
        "status": job.status,
        "todo_count": job.todo_count,
        "size": size,
        "error": job.error,
        "finished_at": job.finished_at,
    }


def _fact(event: Event) -> store.TodoFact:
    data = TodoEventData.model_validate(event.data)
    return store.TodoFact(data.id, data.is_finished, data.created_at, data.updated_at, data.finished_at)


async def on_todo_changed(conn: Connection, event: Event) -> None:
    await store.apply_todo(conn, UUID(event.subject), _fact(event))


async def on_todo_deleted(conn: Connection, event: Event) -> None:
    await store.apply_todo(conn, UUID(event.subject), _fact(event), deleted=True)


async def on_user_deleted(conn: Connection, event: Event) -> None:
    purged = await store.purge_owner(conn, UUID(event.subject))
    log.info("user purged", user_id=event.subject, **purged)


HANDLERS = {
    "todo.created": on_todo_changed,
    "todo.updated": on_todo_changed,
    "todo.finished": on_todo_changed,
    "todo.deleted": on_todo_deleted,
    "user.deleted": on_user_deleted,
}
