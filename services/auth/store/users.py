from __future__ import annotations

from uuid import UUID, uuid4

import asyncpg

from services.auth.store.rows import User
from services.kit.db import Connection


class EmailTaken(Exception):
    """Another account already uses this email."""


def _user(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        name=row["name"],
        created_at=row["created_at"],
        password_hash=row["password_hash"],
    )


async def create_user(conn: Connection, email: str, name: str | None, password_hash: str) -> User:
    try:
        row = await conn.fetchrow(
            """
            INSERT INTO users (id, email, name, password_hash) VALUES ($1, $2, $3, $4)
            RETURNING id, email, name, created_at, password_hash
            """,
            uuid4(),
            email,
            name,
            password_hash,
        )
    except asyncpg.UniqueViolationError:
        raise EmailTaken(email) from None
    assert row is not None
    return _user(row)


async def get_user(conn: Connection, user_id: UUID) -> User | None:
    row = await conn.fetchrow("SELECT id, email, name, created_at, password_hash FROM users WHERE id = $1", user_id)
    return _user(row) if row else None


async def find_user_by_email(conn: Connection, email: str) -> User | None:
    row = await conn.fetchrow("SELECT id, email, name, created_at, password_hash FROM users WHERE email = $1", email)
    return _user(row) if row else None


async def update_password_hash(conn: Connection, user_id: UUID, password_hash: str) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def delete_user(conn: Connection, user_id: UUID) -> bool:
    """Delete the account; its codes, token families and token records go with it (ON DELETE CASCADE)."""
    result = await conn.execute("DELETE FROM users WHERE id = $1", user_id)
    return result == "DELETE 1"
