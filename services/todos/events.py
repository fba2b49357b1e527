"""What the todos service consumes: ``user.deleted`` purges that user's todos."""

from __future__ import annotations

from uuid import UUID

from services.kit.db import Connection
from services.kit.events import Event
from services.kit.logging import get_logger
from services.todos import store

log = get_logger("todos.events")


async def on_user_deleted(conn: Connection, event: Event) -> None:
    purged = await store.purge_owner(conn, UUID(str(event.subject)))
    log.info("user purged", user_id=str(event.subject), todos=purged)


HANDLERS = {"user.deleted": on_user_deleted}
