from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from services.auth.store.rows import Client
from services.kit.db import Connection


def _client(row: asyncpg.Record) -> Client:
    return Client(
        client_id=row["client_id"],
        name=row["name"],
        secret_hash=row["secret_hash"],
        redirect_uris=tuple(row["redirect_uris"]),
        grant_types=frozenset(row["grant_types"]),
        scopes=tuple(row["scopes"]),
    )


async def get_client(conn: Connection, client_id: str) -> Client | None:
    row = await conn.fetchrow(
        """
        SELECT client_id, name, secret_hash, redirect_uris, grant_types, scopes
        FROM oauth_clients WHERE client_id = $1
        """,
        client_id,
    )
    return _client(row) if row else None


async def put_client(
    conn: Connection,
    client_id: str,
    *,
    name: str,
    secret_hash: str | None,
    redirect_uris: Sequence[str],
    grant_types: Sequence[str],
    scopes: Sequence[str],
) -> None:
    """Create the client or bring it in line with the configuration."""
    await conn.execute(
        """
        INSERT INTO oauth_clients (client_id, name, secret_hash, redirect_uris, grant_types, scopes)
        VALUES ($1, $2, $3, $4, $5, $6)
        ON CONFLICT (client_id) DO UPDATE
        SET name = EXCLUDED.name, secret_hash = EXCLUDED.secret_hash, redirect_uris = EXCLUDED.redirect_uris,
            grant_types = EXCLUDED.grant_types, scopes = EXCLUDED.scopes, updated_at = now()
        """,
        client_id,
        name,
        secret_hash,
        list(redirect_uris),
        list(grant_types),
        list(scopes),
    )
