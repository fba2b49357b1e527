"""The auth service's events: what it publishes (one function per type) and what it consumes.

Publishers write to the outbox in the caller's transaction. The auth service consumes
nothing: its ``HANDLERS`` is empty, so its event bus only relays the outbox.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from services.auth.store.rows import User
from services.kit.db import Connection
from services.kit.events import Handler, outbox


async def user_registered(conn: Connection, user: User) -> None:
    # No email or name: other services key everything by user id and need no personal data.
    await outbox.add(conn, "user.registered", subject=user.id, data={"user_id": user.id, "created_at": user.created_at})


async def user_deleted(conn: Connection, user_id: UUID) -> None:
    """Every service purges this user's data when it sees this event."""
    await outbox.add(conn, "user.deleted", subject=user_id, data={"user_id": user_id, "deleted_at": datetime.now(UTC)})


HANDLERS: dict[str, Handler] = {}
