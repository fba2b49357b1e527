"""Token families, authorization codes, refresh tokens and access-token records.

Codes and refresh tokens are stored as sha256 hashes. Spending one is a single
conditional UPDATE, so two concurrent uses cannot both succeed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import asyncpg

from services.auth.store.rows import AuthorizationCode, StoredToken
from services.kit.db import Connection


async def create_family(
    conn: Connection, family_id: UUID, client_id: str, user_id: UUID | None, lifetime: timedelta
) -> None:
    await conn.execute(
        "INSERT INTO token_families (id, client_id, user_id, expires_at) VALUES ($1, $2, $3, now() + $4)",
        family_id,
        client_id,
        user_id,
        lifetime,
    )


async def revoke_family(conn: Connection, family_id: UUID) -> None:
    """Revoke a whole grant: its refresh tokens stop working, its access tokens introspect inactive."""
    await conn.execute("UPDATE token_families SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", family_id)
    await conn.execute(
        "UPDATE access_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL", family_id
    )


async def add_code(conn: Connection, code_hash: bytes, code: AuthorizationCode, auth_time: datetime) -> None:
    await conn.execute(
        """
        INSERT INTO authorization_codes (code_hash, family_id, client_id, user_id, redirect_uri, scope,
                                         code_challenge, code_challenge_method, auth_time, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        """,
        code_hash,
        code.family_id,
        code.client_id,
        code.user_id,
        code.redirect_uri,
        code.scope,
        code.code_challenge,
        code.code_challenge_method,
        auth_time,
        code.expires_at,
    )


async def find_code(conn: Connection, code_hash: bytes, client_id: str) -> AuthorizationCode | None:
    row = await conn.fetchrow(
        """
        SELECT code_hash, family_id, client_id, user_id, redirect_uri, scope, code_challenge,
               code_challenge_method, expires_at, used_at
        FROM authorization_codes WHERE code_hash = $1 AND client_id = $2
        """,
        code_hash,
        client_id,
    )
    return AuthorizationCode(**dict(row)) if row else None


async def spend_code(conn: Connection, code_hash: bytes) -> bool:
    """Mark an unexpired code used; False if it was already used (or expired) meanwhile."""
    result = await conn.execute(
        """
        UPDATE authorization_codes SET used_at = now()
        WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
        """,
        code_hash,
    )
    return result == "UPDATE 1"


def _token(row: asyncpg.Record, kind: str) -> StoredToken:
    return StoredToken(
        kind=kind,
        key=row["key"],
        family_id=row["family_id"],
        client_id=row["client_id"],
        user_id=row["user_id"],
        scope=row["scope"],
        issued_at=row["issued_at"],
        expires_at=row["expires_at"],
        revoked=row["revoked"],
    )


async def find_refresh_token(conn: Connection, token_hash: bytes) -> tuple[StoredToken, bool] | None:
    """The refresh token and whether it was already exchanged (a reuse if presented again)."""
    row = await conn.fetchrow(
        """
        SELECT r.token_hash AS key, r.family_id, f.client_id, f.user_id, r.scope, r.issued_at,
               least(r.expires_at, f.expires_at) AS expires_at, f.revoked_at IS NOT NULL AS revoked,
               r.rotated_at IS NOT NULL AS rotated
        FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id
        WHERE r.token_hash = $1
        """,
        token_hash,
    )
    return (_token(row, "refresh_token"), row["rotated"]) if row else None


async def rotate_refresh_token(conn: Connection, token_hash: bytes) -> bool:
    """Mark a live refresh token exchanged; False if it was exchanged or revoked meanwhile."""
    result = await conn.execute(
        """
        UPDATE refresh_tokens r SET rotated_at = now()
        FROM token_families f
        WHERE r.token_hash = $1 AND r.rotated_at IS NULL AND f.id = r.family_id AND f.revoked_at IS NULL
          AND r.expires_at > now() AND f.expires_at > now()
        """,
        token_hash,
    )
    return result == "UPDATE 1"


async def add_refresh_token(conn: Connection, token_hash: bytes, family_id: UUID, scope: str) -> None:
    """A new refresh token of the family; it lives as long as the family (absolute lifetime)."""
    await conn.execute(
        """
        INSERT INTO refresh_tokens (token_hash, family_id, scope, expires_at)
        SELECT $1, id, $3, expires_at FROM token_families WHERE id = $2
        """,
        token_hash,
        family_id,
        scope,
    )


async def add_access_token(
    conn: Connection,
    jti: UUID,
    *,
    family_id: UUID | None,
    client_id: str,
    user_id: UUID | None,
    scope: str,
    issued_at: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        """
        INSERT INTO access_tokens (jti, family_id, client_id, user_id, scope, issued_at, expires_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7)
        """,
        jti,
        family_id,
        client_id,
        user_id,
        scope,
        issued_at,
        expires_at,
    )


async def find_access_token(conn: Connection, jti: UUID) -> StoredToken | None:
    row = await conn.fetchrow(
        """
        SELECT jti AS key, family_id, client_id, user_id, scope, issued_at, expires_at,
               revoked_at IS NOT NULL AS revoked
        FROM access_tokens WHERE jti = $1
        """,
        jti,
    )
    return _token(row, "access_token") if row else None


async def revoke_access_token(conn: Connection, jti: UUID) -> None:
    await conn.execute("UPDATE access_tokens SET revoked_at = now() WHERE jti = $1 AND revoked_at IS NULL", jti)


async def delete_expired(conn: Connection, grace: timedelta) -> int:
    """Forget codes, tokens and families that expired more than ``grace`` ago; returns rows deleted."""
    total = 0
    for table in ("authorization_codes", "access_tokens", "refresh_tokens", "token_families"):
        result = await conn.execute(f"DELETE FROM {table} WHERE expires_at < now() - $1::interval", grace)
        total += int(result.split()[-1])
    return total
