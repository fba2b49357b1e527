"""Login attempt counters and the addresses each account signed in from (shared by every instance)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from services.kit.db import Connection


def _wait(free: str, base: str, most: str) -> str:
    """SQL: how long the next attempt on delayed counter ``l`` waits after its last counted one.

    Nothing for the first ``free`` attempts, then ``base`` seconds doubling with each attempt,
    at most ``most`` seconds. (The exponent is capped so power() cannot overflow.)
    """
    doubling = f"least({base} * power(2, least(l.failures - {free}, 40)), {most})"
    return f"make_interval(secs => CASE WHEN l.failures < {free} THEN 0 ELSE {doubling} END)"


async def count_attempt(conn: Connection, keys: Sequence[str], window: timedelta) -> dict[str, tuple[int, datetime]]:
    """Count one attempt against each fixed-window key; returns key → (attempts in its window, window start)."""
    rows = await conn.fetch(
        """
        INSERT INTO login_failures AS l (key, failures, window_start, last_at)
        SELECT k, 1, now(), now() FROM unnest($1::text[]) AS k
        ON CONFLICT (key) DO UPDATE SET
            failures = CASE WHEN l.window_start + $2::interval <= now() THEN 1 ELSE l.failures + 1 END,
            window_start = CASE WHEN l.window_start + $2::interval <= now() THEN now() ELSE l.window_start END,
            last_at = now()
        RETURNING key, failures, window_start
        """,
        list(keys),
        window,
    )
    return {r["key"]: (r["failures"], r["window_start"]) for r in rows}


async def count_delayed_attempt(
    conn: Connection, key: str, quiet: timedelta, free: int, base_seconds: float, max_seconds: float
) -> float | None:
    """Count one attempt on a progressively delayed key; None when counted, else the seconds left to wait.

    The first ``free`` attempts pass at once; each further one only once its wait since the
    last counted attempt is over. An attempt that comes too early is not counted (it neither
    lengthens the wait nor spends a guess). The count starts again only after a ``quiet``
    stretch beyond the wait with no counted attempt, so a patient attacker never resets it.
    """
    wait = _wait("$3", "$4", "$5")
    counted = await conn.fetchval(
        f"""
        INSERT INTO login_failures AS l (key, failures, window_start, last_at) VALUES ($1, 1, now(), now())
        ON CONFLICT (key) DO UPDATE SET
            failures = CASE WHEN l.last_at + {wait} + $2::interval <= now() THEN 1 ELSE l.failures + 1 END,
            window_start = CASE WHEN l.last_at + {wait} + $2::interval <= now() THEN now() ELSE l.window_start END,
            last_at = now()
        WHERE l.last_at + {wait} <= now()
        RETURNING failures
        """,
        key,
        quiet,
        free,
        base_seconds,
        max_seconds,
    )
    if counted is not None:
        return None
    left = await conn.fetchval(
        f"SELECT extract(epoch FROM l.last_at + {_wait('$2', '$3', '$4')} - now())::float8 "
        "FROM login_failures l WHERE key = $1",
        key,
        free,
        base_seconds,
        max_seconds,
    )
    return max(0.0, float(left or 0.0))


async def forget_attempt(conn: Connection, key: str) -> None:
    """Take back one counted attempt (a successful login from this address)."""
    await conn.execute("UPDATE login_failures SET failures = greatest(failures - 1, 0) WHERE key = $1", key)


async def reset(conn: Connection, key: str) -> None:
    await conn.execute("DELETE FROM login_failures WHERE key = $1", key)


async def is_known_address(conn: Connection, user_id: UUID, address_key: str, kept: timedelta) -> bool:
    """Did ``user_id`` sign in from ``address_key`` within ``kept``?"""
    found = await conn.fetchval(
        "SELECT 1 FROM login_known_addresses WHERE user_id = $1 AND address_key = $2 "
        "AND last_success_at > now() - $3::interval",
        user_id,
        address_key,
        kept,
    )
    return found is not None


async def remember_address(conn: Connection, user_id: UUID, address_key: str, most: int) -> None:
    """Record a successful sign-in from ``address_key``; keep only the account's ``most`` latest addresses."""
    await conn.execute(
        """
        INSERT INTO login_known_addresses (user_id, address_key, last_success_at) VALUES ($1, $2, now())
        ON CONFLICT (user_id, address_key) DO UPDATE SET last_success_at = now()
        """,
        user_id,
        address_key,
    )
    await conn.execute(
        """
        DELETE FROM login_known_addresses WHERE user_id = $1 AND address_key NOT IN (
            SELECT address_key FROM login_known_addresses WHERE user_id = $1
            ORDER BY last_success_at DESC LIMIT $2)
        """,
        user_id,
        most,
    )


async def delete_stale(conn: Connection, idle: timedelta, known_for: timedelta) -> None:
    """Forget counters with no counted attempt for ``idle``, addresses not signed in from for ``known_for``.

    ``idle`` must cover a window and the longest wait: a delayed counter under a patient
    attack is counted at least that often, so it is never forgotten (and reset) mid-attack.
    """
    await conn.execute("DELETE FROM login_failures WHERE last_at < now() - $1::interval", idle)
    await conn.execute("DELETE FROM login_known_addresses WHERE last_success_at < now() - $1::interval", known_for)
