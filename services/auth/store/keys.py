from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.kit.db import Connection

# Serialises "is there a key yet?" across instances starting at once.
_KEY_LOCK = 0x41555448


@dataclass(frozen=True)
class KeyRow:
    kid: str
    alg: str
    private_jwk: dict[str, Any]
    public_jwk: dict[str, Any]
    activated_at: datetime


async def list_keys(conn: Connection) -> list[KeyRow]:
    """Every signing key, oldest activation first."""
    rows = await conn.fetch(
        """
        SELECT kid, alg, private_jwk::text, public_jwk::text, activated_at
        FROM signing_keys ORDER BY activated_at, kid
        """
    )
    return [
        KeyRow(r["kid"], r["alg"], json.loads(r["private_jwk"]), json.loads(r["public_jwk"]), r["activated_at"])
        for r in rows
    ]


async def lock_keys(conn: Connection) -> None:
    """Hold the key lock until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEY_LOCK)


async def add_key(
    conn: Connection,
    kid: str,
    alg: str,
    private_jwk: dict[str, Any],
    public_jwk: dict[str, Any],
    activated_at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO signing_keys (kid, alg, private_jwk, public_jwk, activated_at)
        VALUES ($1, $2, $3::jsonb, $4::jsonb, $5)
        """,
        kid,
        alg,
        json.dumps(private_jwk),
        json.dumps(public_jwk),
        activated_at,
    )


async def delete_keys(conn: Connection, kids: list[str]) -> None:
    if kids:
        await conn.execute("DELETE FROM signing_keys WHERE kid = ANY($1::text[])", kids)


async def service_secret(conn: Connection, name: str, size: int = 32) -> bytes:
    """The named secret, created at random the first time any instance asks for it."""
    await conn.execute(
        "INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        name,
        secrets.token_bytes(size),
    )
    value = await conn.fetchval("SELECT value FROM service_secrets WHERE name = $1", name)
    return bytes(value)
