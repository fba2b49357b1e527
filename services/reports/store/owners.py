"""An owner's lifetime here: the per-owner lock, deleted accounts and the purge of all they had."""

from __future__ import annotations

from uuid import UUID

from services.kit.db import Connection


class AccountDeleted(Exception):
    """The owner's account was deleted; nothing new is stored for it."""


async def lock_owner(conn: Connection, owner: UUID) -> None:
    # One transaction at a time per owner for job creation and purging: a job is either
    # created before the purge (and purged with the rest) or refused after it.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 7))", owner)


async def purge_owner(conn: Connection, owner: UUID) -> dict[str, int]:
    """Forget a deleted user: statistics, jobs and files; and ignore their late events."""
    await lock_owner(conn, owner)
    await conn.execute("INSERT INTO deleted_users (owner_id) VALUES ($1) ON CONFLICT DO NOTHING", owner)
    facts = await conn.execute("DELETE FROM todo_facts WHERE owner_id = $1", owner)
    jobs = await conn.execute("DELETE FROM report_jobs WHERE owner_id = $1", owner)  # files cascade
    return {"todos": int(facts.split()[-1]), "jobs": int(jobs.split()[-1])}
