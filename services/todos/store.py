"""All SQL of the todos service. Every query names its owner: another user's todo is simply not found."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from services.kit.db import Connection
from services.todos.cursor import Position

_COLUMNS = "id, content, is_finished, created_at, updated_at, finished_at, version"


@dataclass(frozen=True)
class TodoRow:
    id: UUID
    content: str
    is_finished: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    version: int

    @classmethod
    def of(cls, record: asyncpg.Record) -> TodoRow:
        return cls(**dict(record))

    @property
    def position(self) -> Position:
        return Position(self.created_at, self.id)

    @property
    def etag(self) -> str:
        return f'"{self.version}"'

    def public(self) -> dict[str, Any]:
        """The todo as the API shows it."""
        return {
            "id": self.id,
            "content": self.content,
            "is_finished": self.is_finished,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "finished_at": self.finished_at,
        }

    def event(self) -> dict[str, Any]:
        """The todo as events carry it (JSON-ready)."""
        return {
            "id": str(self.id),
            "content": self.content,
            "is_finished": self.is_finished,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


async def list_todos(
    conn: Connection, owner: UUID, *, after: Position | None, is_finished: bool | None, limit: int
) -> list[TodoRow]:
    """One page, newest first; ``limit`` rows (the caller asks one more to know if another page exists)."""
    # One query, assembled from fixed fragments: each variant is an index range scan without a sort.
    where = ["owner_id = $1"]
    args: list[Any] = [owner]
    if is_finished is not None:
        args.append(is_finished)
        where.append(f"is_finished = ${len(args)}")
    if after is not None:
        args.extend([after.created_at, after.id])
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit)
    sql = (
        f"SELECT {_COLUMNS} FROM todos WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ${len(args)}"
    )
    return [TodoRow.of(r) for r in await conn.fetch(sql, *args)]


async def get_todo(conn: Connection, owner: UUID, todo_id: UUID) -> TodoRow | None:
    record = await conn.fetchrow(f"SELECT {_COLUMNS} FROM todos WHERE owner_id = $1 AND id = $2", owner, todo_id)
    return TodoRow.of(record) if record else None


async def create_todo(conn: Connection, owner: UUID, content: str, max_todos: int) -> TodoRow | None:
    """Insert a todo; ``None`` when the owner already has ``max_todos``.

    The owner's count row is bumped first, and only below the limit: ON CONFLICT DO UPDATE
    locks it, so a concurrent create waits for this transaction and then sees its count.
    """
    record = await conn.fetchrow(
        f"""
        WITH slot AS (
            INSERT INTO todo_counts AS c (owner_id, todos) VALUES ($1, 1)
            ON CONFLICT (owner_id) DO UPDATE SET todos = c.todos + 1 WHERE c.todos < $3
            RETURNING owner_id
        )
        INSERT INTO todos (owner_id, content) SELECT owner_id, $2 FROM slot RETURNING {_COLUMNS}
        """,
        owner,
        content,
        max_todos,
    )
    return TodoRow.of(record) if record else None


async def update_todo(
    conn: Connection,
    owner: UUID,
    todo_id: UUID,
    *,
    content: str | None,
    is_finished: bool | None,
    expected_version: int | None,
) -> TodoRow | None:
    """Apply a patch; ``None`` when the todo is missing or (with ``expected_version``) stale."""
    record = await conn.fetchrow(
        f"""
        UPDATE todos SET
            content = coalesce($3, content),
            is_finished = coalesce($4, is_finished),
            finished_at = CASE
                WHEN $4::boolean IS NULL THEN finished_at
                WHEN $4 AND NOT is_finished THEN clock_timestamp()
                WHEN $4 THEN finished_at
                ELSE NULL END,
            updated_at = clock_timestamp(),
            version = version + 1
        WHERE owner_id = $1 AND id = $2 AND ($5::integer IS NULL OR version = $5)
        RETURNING {_COLUMNS}
        """,
        owner,
        todo_id,
        content,
        is_finished,
        expected_version,
    )
    return TodoRow.of(record) if record else None


async def finish_todo(conn: Connection, owner: UUID, todo_id: UUID) -> TodoRow | None:
    """Mark finished; ``None`` when it was already finished (no change) or missing."""
    record = await conn.fetchrow(
        f"""
        UPDATE todos SET is_finished = true, finished_at = clock_timestamp(),
                         updated_at = clock_timestamp(), version = version + 1
        WHERE owner_id = $1 AND id = $2 AND NOT is_finished
        RETURNING {_COLUMNS}
        """,
        owner,
        todo_id,
    )
    return TodoRow.of(record) if record else None


async def delete_todo(conn: Connection, owner: UUID, todo_id: UUID) -> TodoRow | None:
    record = await conn.fetchrow(
        f"DELETE FROM todos WHERE owner_id = $1 AND id = $2 RETURNING {_COLUMNS}", owner, todo_id
    )
    if record is None:
        return None
    # After the todo's row lock, like every path: creates lock only the count row, the purge
    # deletes todos before counts, so no two transactions take these locks in opposite orders.
    await conn.execute("UPDATE todo_counts SET todos = todos - 1 WHERE owner_id = $1", owner)
    return TodoRow.of(record)


async def put_todo_state(conn: Connection, owner: UUID, todo: TodoRow) -> tuple[TodoRow, bool] | None:
    """Make the todo ``todo.id`` of ``owner`` exactly ``todo`` (an admin write: the demo seed).

    Returns the row and whether it was inserted, or ``None`` when nothing changed. A
    changed row gets a new version and ``updated_at`` now, so readers ordering by
    ``updated_at`` see the change as the newest; an inserted one keeps ``todo``'s times.
    """
    record = await conn.fetchrow(
        f"""
        INSERT INTO todos AS t (id, owner_id, content, is_finished, created_at, updated_at, finished_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        ON CONFLICT (id) DO UPDATE SET
            content = EXCLUDED.content, is_finished = EXCLUDED.is_finished, created_at = EXCLUDED.created_at,
            finished_at = EXCLUDED.finished_at, updated_at = clock_timestamp(), version = t.version + 1
        WHERE t.owner_id = EXCLUDED.owner_id
          AND (t.content, t.is_finished, t.created_at, t.finished_at)
              IS DISTINCT FROM (EXCLUDED.content, EXCLUDED.is_finished, EXCLUDED.created_at, EXCLUDED.finished_at)
        RETURNING {_COLUMNS}, (xmax = 0) AS inserted
        """,
        todo.id,
        owner,
        todo.content,
        todo.is_finished,
        todo.created_at,
        todo.updated_at,
        todo.finished_at,
    )
    if record is None:
        return None
    values = dict(record)
    inserted = bool(values.pop("inserted"))
    return TodoRow(**values), inserted


async def delete_todos_except(conn: Connection, owner: UUID, keep: list[UUID]) -> list[TodoRow]:
    """Delete every todo of ``owner`` whose id is not in ``keep``; returns what was deleted."""
    records = await conn.fetch(
        f"DELETE FROM todos WHERE owner_id = $1 AND NOT (id = ANY($2::uuid[])) RETURNING {_COLUMNS}", owner, keep
    )
    return [TodoRow.of(r) for r in records]


def _owner_lock_key(owner: UUID) -> int:
    # A 64-bit advisory lock key per owner (collisions only make two owners wait on each other).
    return int.from_bytes(owner.bytes[:8], "big", signed=True)


async def lock_owner_for_create(conn: Connection, owner: UUID) -> bool:
    """Take the owner's shared lock for this transaction; ``False`` if the account was deleted.

    The purge takes the same lock exclusively, so a create either commits before the purge
    (and is purged with the rest) or sees the deletion and is refused.
    """
    await conn.execute("SELECT pg_advisory_xact_lock_shared($1)", _owner_lock_key(owner))
    return not await conn.fetchval("SELECT EXISTS (SELECT 1 FROM deleted_users WHERE user_id = $1)", owner)


async def purge_owner(conn: Connection, owner: UUID) -> int:
    """Delete everything an owner has here (their account was deleted) and refuse later creates."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _owner_lock_key(owner))
    await conn.execute("INSERT INTO deleted_users (user_id) VALUES ($1) ON CONFLICT DO NOTHING", owner)
    await conn.execute("DELETE FROM idempotency_keys WHERE owner_id = $1", owner)
    status = await conn.execute("DELETE FROM todos WHERE owner_id = $1", owner)
    await conn.execute("DELETE FROM todo_counts WHERE owner_id = $1", owner)
    return int(status.split()[-1])


# Idempotency keys -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status: int
    body: dict[str, Any]
    location: str | None


async def claim_idempotency_key(conn: Connection, owner: UUID, key: str, request_hash: str, ttl_hours: int) -> bool:
    """Claim ``key`` for this request; ``False`` when a live earlier request holds it.

    A concurrent claim of the same key waits on the unique index until the first
    transaction ends, so two racing creates never both win.
    """
    claimed = await conn.fetchval(
        """
        INSERT INTO idempotency_keys AS k (owner_id, key, request_hash) VALUES ($1, $2, $3)
        ON CONFLICT (owner_id, key) DO UPDATE
            SET request_hash = EXCLUDED.request_hash, status = NULL, body = NULL, location = NULL,
                created_at = now()
            WHERE k.created_at < now() - make_interval(hours => $4)
        RETURNING true
        """,
        owner,
        key,
        request_hash,
        ttl_hours,
    )
    return bool(claimed)


async def stored_response(conn: Connection, owner: UUID, key: str) -> StoredResponse | None:
    record = await conn.fetchrow(
        "SELECT request_hash, status, body, location FROM idempotency_keys WHERE owner_id = $1 AND key = $2",
        owner,
        key,
    )
    if record is None or record["status"] is None:
        return None
    return StoredResponse(record["request_hash"], record["status"], json.loads(record["body"]), record["location"])


async def store_response(
    conn: Connection, owner: UUID, key: str, status: int, body: dict[str, Any], location: str | None
) -> None:
    await conn.execute(
        "UPDATE idempotency_keys SET status = $3, body = $4::jsonb, location = $5 WHERE owner_id = $1 AND key = $2",
        owner,
        key,
        status,
        json.dumps(body, default=str),
        location,
    )


async def prune_idempotency_keys(conn: Connection, ttl_hours: int) -> int:
    status = await conn.execute(
        "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => $1)", ttl_hours
    )
    return int(status.split()[-1])
