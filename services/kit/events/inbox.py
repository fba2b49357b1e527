"""The inbox: which events this service has already handled (de-duplication by event id)."""

from __future__ import annotations

from services.kit.db import Connection
from services.kit.events.envelope import Event


async def record(conn: Connection, event: Event) -> bool:
    """Record ``event`` as handled; False when it already was (a redelivery).

    Run it in the handler's transaction: if the handler fails, the record rolls back
    with it. A concurrent delivery of the same id waits on the primary key until the
    first transaction ends, then sees the conflict.
    """
    inserted = await conn.fetchval(
        """
        INSERT INTO event_inbox (event_id, type) VALUES ($1, $2)
        ON CONFLICT (event_id) DO NOTHING
        RETURNING true
        """,
        event.id,
        event.type,
    )
    return bool(inserted)


async def prune(conn: Connection, retention_seconds: float) -> int:
    """Forget handled ids older than the retention (the de-duplication window); returns how many."""
    deleted = await conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM event_inbox WHERE received_at < now() - make_interval(secs => $1::float8) RETURNING 1
        )
        SELECT count(*) FROM gone
        """,
        retention_seconds,
    )
    return int(deleted)
