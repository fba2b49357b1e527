"""Counters of login attempts per key in a fixed window (shared by every instance)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from services.kit.db import Connection


async def count_attempt(conn: Connection, keys: Sequence[str], window: timedelta) -> dict[str, tuple[int, datetime]]:
    """Count one attempt against each key; returns key → (attempts in its window, window start)."""
    rows = await conn.fetch(
        """
        INSERT INTO login_failures AS l (key, failures, window_start)
        SELECT k, 1, now() FROM unnest($1::text[]) AS k
        ON CONFLICT (key) DO UPDATE SET
            failures = CASE WHEN l.window_start + $2::interval <= now() THEN 1 ELSE l.failures + 1 END,
            window_start = CASE WHEN l.window_start + $2::interval <= now() THEN now() ELSE l.window_start END
        RETURNING key, failures, window_start
        """,
        list(keys),
        window,
    )
    return {r["key"]: (r["failures"], r["window_start"]) for r in rows}


async def forget_attempt(conn: Connection, key: str) -> None:
    """Take back one counted attempt (a successful login from this address)."""
    await conn.execute("UPDATE login_failures SET failures = greatest(failures - 1, 0) WHERE key = $1", key)


async def reset(conn: Connection, key: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE key = $1", key)


async def delete_stale(conn: Connection, window: timedelta) -> None:
    await conn.execute("DELETE FROM login_failures WHERE window_start < now() - $1::interval", window)
