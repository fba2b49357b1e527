from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.auth.sealing import SealedKey
from services.kit.db import Connection

# Serialises "is there a key yet?", rotation and revocation across instances.
_KEY_LOCK = 0x41555448


@dataclass(frozen=True)
class KeyRow:
    kid: str
    alg: str
    sealed: SealedKey | None  # None only for a row written before 0002 and not sealed yet
    public_jwk: dict[str, Any]
    activated_at: datetime
    legacy_private_jwk: dict[str, Any] | None = None


async def list_keys(conn: Connection) -> list[KeyRow]:
    """Every signing key, oldest activation first."""
    rows = await conn.fetch(
        """
        SELECT kid, alg, sealed_private, wrapped_data_key, kek_id, private_jwk::text, public_jwk::text, activated_at
        FROM signing_keys ORDER BY activated_at, kid
        """
    )
    return [
        KeyRow(
            r["kid"],
            r["alg"],
            SealedKey(bytes(r["sealed_private"]), bytes(r["wrapped_data_key"]), r["kek_id"])
            if r["sealed_private"] is not None
            else None,
            json.loads(r["public_jwk"]),
            r["activated_at"],
            json.loads(r["private_jwk"]) if r["private_jwk"] is not None else None,
        )
        for r in rows
    ]


async def lock_keys(conn: Connection) -> None:
    """Hold the key lock until the caller's transaction ends."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", _KEY_LOCK)


async def add_key(
    conn: Connection, kid: str, alg: str, sealed: SealedKey, public_jwk: dict[str, Any], activated_at: datetime
) -> None:
    await conn.execute(
        """
        INSERT INTO signing_keys (kid, alg, sealed_private, wrapped_data_key, kek_id, public_jwk, activated_at)
        VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)
        """,
        kid,
        alg,
        sealed.sealed_private,
        sealed.wrapped_data_key,
        sealed.kek_id,
        json.dumps(public_jwk),
        activated_at,
    )


async def store_sealed(conn: Connection, kid: str, sealed: SealedKey) -> None:
    """Replace a key's private part with ``sealed`` (sealing a legacy row, or re-wrapping)."""
    await conn.execute(
        """
        UPDATE signing_keys SET sealed_private = $2, wrapped_data_key = $3, kek_id = $4, private_jwk = NULL
        WHERE kid = $1
        """,
        kid,
        sealed.sealed_private,
        sealed.wrapped_data_key,
        sealed.kek_id,
    )


async def activate(conn: Connection, kid: str, at: datetime) -> None:
    await conn.execute("UPDATE signing_keys SET activated_at = $2 WHERE kid = $1", kid, at)


async def delete_keys(conn: Connection, kids: list[str]) -> None:
    if kids:
        await conn.execute("DELETE FROM signing_keys WHERE kid = ANY($1::text[])", kids)


async def compact_keys(conn: Connection) -> None:
    """Rewrite the table so the old row versions (plaintext keys before sealing) leave its data files.
    Outside any transaction; the service's role owns the table."""
    await conn.execute("VACUUM FULL signing_keys")


async def service_secret(conn: Connection, name: str, size: int = 32) -> bytes:
    """The named secret, created at random the first time any instance asks for it."""
    await conn.execute(
        "INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        name,
        secrets.token_bytes(size),
    )
    value = await conn.fetchval("SELECT value FROM service_secrets WHERE name = $1", name)
    return bytes(value)
