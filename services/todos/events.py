"""The todos service's events: what it publishes (one function per type) and what it consumes.

Publishers write to the outbox in the caller's transaction, next to the change they
announce; every ``todo.*`` event carries the todo's whole state (``_todo_data``), so a
consumer can apply them in any order, newest ``updated_at`` winning. Consumed:
``user.deleted`` purges that user's todos (and their cached pages).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.kit.cache import PageCache
from services.kit.db import Connection
from services.kit.events import Event, Handler, outbox
from services.kit.logging import get_logger
from services.todos import store

log = get_logger("todos.events")


# Published --------------------------------------------------------------------------------------


def _todo_data(row: store.TodoRow) -> dict[str, Any]:
    """The todo as every ``todo.*`` event carries it (JSON-ready)."""
    return {
        "id": str(row.id),
        "content": row.content,
        "is_finished": row.is_finished,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
    }


async def todo_created(conn: Connection, owner: UUID, row: store.TodoRow) -> None:
    await outbox.add(conn, "todo.created", subject=owner, data=_todo_data(row))


async def todo_updated(conn: Connection, owner: UUID, row: store.TodoRow) -> None:
    await outbox.add(conn, "todo.updated", subject=owner, data=_todo_data(row))


async def todo_finished(conn: Connection, owner: UUID, row: store.TodoRow) -> None:
    await outbox.add(conn, "todo.finished", subject=owner, data=_todo_data(row))


async def todo_deleted(conn: Connection, owner: UUID, row: store.TodoRow) -> None:
    """``row`` is the todo as it was when deleted."""
    await outbox.add(conn, "todo.deleted", subject=owner, data=_todo_data(row))


# Consumed ---------------------------------------------------------------------------------------


async def on_user_deleted(conn: Connection, event: Event) -> None:
    purged = await store.purge_owner(conn, UUID(str(event.subject)))
    log.info("user purged", user_id=str(event.subject), todos=purged)


HANDLERS: dict[str, Handler] = {"user.deleted": on_user_deleted}


def handlers(pages: PageCache) -> dict[str, Handler]:
    """:data:`HANDLERS` that also drop a deleted user's cached pages (docs/caching.md)."""

    async def on_user_deleted_cached(conn: Connection, event: Event) -> None:
        # Before the purge commits, and for good: the owner's token becomes "gone", so a read
        # from now on loads from the database and nothing is cached for them again.
        await pages.forget(str(event.subject))
        await on_user_deleted(conn, event)

    return {"user.deleted": on_user_deleted_cached}
