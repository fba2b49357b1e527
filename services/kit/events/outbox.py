"""The transactional outbox: write an event in the caller's transaction; the relay's SQL.

``add`` is what a service's typed publisher calls, in the transaction of the change
(``services/todos/events.py``)::

    async def todo_created(conn: Connection, owner: UUID, row: store.TodoRow) -> None:
        await outbox.add(conn, "todo.created", subject=owner, data=_todo_data(row))

If the transaction rolls back, the event never existed. The producer name is not
stored: each service owns its database, so the relay of that service stamps its own
``service_name`` on every envelope it publishes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

import structlog

from services.kit.db import Connection
from services.kit.events.envelope import TYPE_PATTERN, Event
from services.kit.tracing import current_carrier

# The relay LISTENs on this channel; NOTIFY is delivered when the writing transaction commits.
NOTIFY_CHANNEL = "kit_events_outbox"

_TYPE_RE = re.compile(TYPE_PATTERN)


def _json_default(value: Any) -> Any:
    if isinstance(value, UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


async def add(
    conn: Connection,
    type: str,
    *,
    subject: str | UUID,
    data: dict[str, Any],
    correlation_id: str | None = None,
    version: int = 1,
) -> UUID:
    """Write an event into the outbox inside the caller's transaction; returns its id.

    ``correlation_id`` defaults to the ``request_id`` bound in the structlog context
    (the HTTP request that caused the change). UUIDs, datetimes and decimals in
    ``data`` are written as strings. The current trace context is stored with the
    row, so the publication and its consumers continue the request's trace.
    """
    if not conn.is_in_transaction():
        raise RuntimeError("outbox.add must run inside the transaction of the change it announces")
    if not _TYPE_RE.match(type):
        raise ValueError(f"event type {type!r} must be dotted lowercase words, e.g. 'todo.created'")
    if not isinstance(data, dict):
        raise TypeError("event data must be a JSON object (a dict)")
    if version < 1:
        raise ValueError("event version must be at least 1")
    if correlation_id is None:
        bound = structlog.contextvars.get_contextvars().get("request_id")
        correlation_id = str(bound) if bound is not None else None
    event_id = uuid4()
    trace_context = current_carrier()
    await conn.execute(
        """
        INSERT INTO event_outbox (id, type, version, occurred_at, subject, correlation_id, data, trace_context)
        VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $8::jsonb)
        """,
        event_id,
        type,
        version,
        datetime.now(UTC),
        str(subject),
        correlation_id,
        json.dumps(data, default=_json_default),
        json.dumps(trace_context) if trace_context else None,
    )
    await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    return event_id


# --- what the relay runs -----------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """A publication that was not confirmed and should be tried again later."""

    event_id: UUID
    error: str
    unroutable: bool


async def claim_batch(conn: Connection, limit: int, producer: str) -> list[Event]:
    """Lock up to ``limit`` due events, oldest first; other relays skip them (SKIP LOCKED)."""
    rows = await conn.fetch(
        """
        SELECT id, type, version, occurred_at, subject, correlation_id, data::text AS data,
               trace_context::text AS trace_context
        FROM event_outbox
        WHERE published_at IS NULL AND discarded_at IS NULL AND next_attempt_at <= now()
        ORDER BY position
        LIMIT $1
        FOR UPDATE SKIP LOCKED
        """,
        limit,
    )
    return [
        Event(
            id=row["id"],
            type=row["type"],
            version=row["version"],
            occurred_at=row["occurred_at"],
            producer=producer,
            subject=row["subject"],
            correlation_id=row["correlation_id"],
            data=json.loads(row["data"]),
            trace_context=json.loads(row["trace_context"] or "{}"),
        )
        for row in rows
    ]


async def mark_published(conn: Connection, event_ids: Sequence[UUID]) -> None:
    if event_ids:
        await conn.execute(
            "UPDATE event_outbox SET published_at = now(), last_error = NULL WHERE id = ANY($1::uuid[])",
            list(event_ids),
        )


async def mark_failed(
    conn: Connection, failures: Sequence[Failure], *, retry_min: float, retry_max: float, unroutable_window: float
) -> list[UUID]:
    """Push failed rows back with exponential backoff; returns the ids discarded for good.

    A row that is still unroutable ``unroutable_window`` seconds after it was written
    is marked discarded: nobody subscribes to its type. It stays in the table (for
    inspection) until pruned. Refused rows are retried for as long as it takes.
    """
    if not failures:
        return []
    rows = await conn.fetch(
        """
        UPDATE event_outbox AS o
        SET attempts = o.attempts + 1,
            last_error = f.error,
            next_attempt_at = now() + make_interval(secs => least($4::float8 * power(2, o.attempts), $5::float8)),
            discarded_at = CASE
                WHEN f.unroutable AND o.occurred_at < now() - make_interval(secs => $6::float8) THEN now()
            END
        FROM unnest($1::uuid[], $2::text[], $3::bool[]) AS f(id, error, unroutable)
        WHERE o.id = f.id
        RETURNING o.id, o.discarded_at IS NOT NULL AS discarded
        """,
        [f.event_id for f in failures],
        [f.error for f in failures],
        [f.unroutable for f in failures],
        retry_min,
        retry_max,
        unroutable_window,
    )
    return [row["id"] for row in rows if row["discarded"]]


async def count_pending(conn: Connection) -> int:
    count, _ = await pending_stats(conn)
    return count


async def pending_stats(conn: Connection) -> tuple[int, float]:
    """(events not yet published, age in seconds of the oldest of them; 0 when none): the outbox lag."""
    row = await conn.fetchrow(
        """
        SELECT count(*) AS pending,
               coalesce(extract(epoch FROM now() - min(occurred_at)), 0)::float8 AS oldest_seconds
        FROM event_outbox
        WHERE published_at IS NULL AND discarded_at IS NULL
        """
    )
    assert row is not None
    return int(row["pending"]), max(0.0, float(row["oldest_seconds"]))


async def prune(conn: Connection, retention_seconds: float) -> int:
    """Delete published and discarded rows older than the retention; returns how many."""
    deleted = await conn.fetchval(
        """
        WITH gone AS (
            DELETE FROM event_outbox
            WHERE (published_at IS NOT NULL OR discarded_at IS NOT NULL)
              AND coalesce(published_at, discarded_at) < now() - make_interval(secs => $1::float8)
            RETURNING 1
        )
        SELECT count(*) FROM gone
        """,
        retention_seconds,
    )
    return int(deleted)
