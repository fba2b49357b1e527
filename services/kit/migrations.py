"""Numbered ``.sql`` migrations applied under a PostgreSQL advisory lock.

A migration source is a name and a folder of ``NNNN_name.sql`` files. Each file
runs once, in its own transaction, and is recorded in ``schema_migrations`` as
``<source>/<file stem>``. Several instances starting at once serialise on the
advisory lock, so each file runs exactly once.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from services.kit.db import Connection
from services.kit.logging import get_logger

log = get_logger(__name__)

# Arbitrary but fixed: the key every Quartet service locks while migrating.
MIGRATION_LOCK_KEY = 0x51554152
_FILE_PATTERN = re.compile(r"^\d{4}_[a-z0-9_]+\.sql$")


@dataclass(frozen=True)
class MigrationSource:
    """A named folder of numbered SQL files (e.g. the kit's outbox tables, a service's own)."""

    name: str
    folder: Path

    def files(self) -> list[Path]:
        found = sorted(p for p in self.folder.glob("*.sql") if p.is_file())
        bad = [p.name for p in found if not _FILE_PATTERN.match(p.name)]
        if bad:
            raise ValueError(f"migration files must be named NNNN_name.sql: {bad}")
        return found


async def apply_migrations(conn: Connection, sources: Sequence[MigrationSource]) -> list[str]:
    """Apply every pending migration of ``sources`` in order; returns the versions applied."""
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
    try:
        await conn.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version text PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        for source in sources:
            for path in source.files():
                version = f"{source.name}/{path.stem}"
                if version in done:
                    continue
                async with conn.transaction():
                    await conn.execute(path.read_text())
                    await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                log.info("migration applied", version=version)
                applied_now.append(version)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    return applied_now


async def migrate(dsn: str, sources: Sequence[MigrationSource], *, wait_seconds: float = 30.0) -> list[str]:
    """Connect (retrying while PostgreSQL comes up, at most ``wait_seconds``) and apply migrations."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.2
    while True:
        try:
            conn = await asyncpg.connect(dsn, timeout=5)
            break
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.exceptions.CannotConnectNowError, TimeoutError):
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database not reachable yet, retrying", retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
    try:
        return await apply_migrations(conn, sources)
    finally:
        await conn.close()
