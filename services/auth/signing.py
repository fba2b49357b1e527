"""Token signing keys: kept in the auth database, the newest activated one signs.

``rotate-keys`` adds a key; from then on new tokens carry its ``kid``. A retired key
stays in the JWKS until the last token it signed has expired (its successor's
activation + the access-token lifetime + a margin for clock skew), then it is pruned.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, Key, OKPKey, RSAKey

from services.auth.store import keys as store
from services.kit.db import Connection, Database

# Published past its last token's expiry, for resource servers whose clock runs behind.
JWKS_MARGIN = timedelta(minutes=5)


def generate_key(alg: str) -> Key:
    """A fresh private key for ``alg`` (RS256: RSA 2048; ES256: P-256; Ed25519)."""
    params: Any = {"alg": alg, "use": "sig", "kid": uuid.uuid4().hex}
    if alg == "RS256":
        return RSAKey.generate_key(2048, params)
    if alg == "ES256":
        return ECKey.generate_key("P-256", params)
    if alg == "Ed25519":
        return OKPKey.generate_key("Ed25519", params)
    raise ValueError(f"unsupported signing algorithm {alg!r}")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: str
    key: Key


@dataclass(frozen=True)
class KeyState:
    """The keys as stored at one moment: the one that signs, and the public keys to publish."""

    current: store.KeyRow
    published: tuple[dict[str, Any], ...]
    expired_kids: tuple[str, ...]


def key_state(rows: list[store.KeyRow], token_ttl: timedelta, now: datetime | None = None) -> KeyState:
    """Which key signs now, which public keys a token may still need, which keys no token can need."""
    now = now or datetime.now(UTC)
    active = [row for row in rows if row.activated_at <= now]
    if not active:
        raise LookupError("no activated signing key; run `python -m services.auth rotate-keys`")
    published: list[dict[str, Any]] = []
    expired: list[str] = []
    for index, row in enumerate(rows):
        successor = rows[index + 1] if index + 1 < len(rows) else None
        retired_at = successor.activated_at if successor and successor.activated_at <= now else None
        if retired_at is None or retired_at + token_ttl + JWKS_MARGIN > now:
            published.append(row.public_jwk)
        else:
            expired.append(row.kid)
    return KeyState(active[-1], tuple(published), tuple(expired))


class KeyRing:
    """Reads the key table on every use (so a rotation by any instance takes effect at once)
    and caches the imported keys by ``kid``."""

    def __init__(self, db: Database, token_ttl: timedelta) -> None:
        self._db = db
        self._ttl = token_ttl
        self._imported: dict[tuple[str, bool], Key] = {}

    async def state(self) -> KeyState:
        async with self._db.connection() as conn:
            return key_state(await store.list_keys(conn), self._ttl)

    async def signing_key(self) -> SigningKey:
        row = (await self.state()).current
        return SigningKey(row.kid, row.alg, self._import(row.kid, row.private_jwk, private=True))

    async def jwks(self) -> dict[str, Any]:
        return {"keys": list((await self.state()).published)}

    async def public_key(self, kid: str) -> SigningKey | None:
        """A published key by ``kid`` (to check tokens this service issued)."""
        for jwk in (await self.state()).published:
            if jwk.get("kid") == kid:
                return SigningKey(kid, str(jwk["alg"]), self._import(kid, jwk, private=False))
        return None

    def _import(self, kid: str, jwk: dict[str, Any], *, private: bool) -> Key:
        cached = self._imported.get((kid, private))
        if cached is None:
            cached = self._imported[(kid, private)] = JWKRegistry.import_key(jwk)
        return cached


async def ensure_key(conn: Connection, alg: str) -> None:
    """Create the first signing key if there is none (once, whichever instance starts first)."""
    async with conn.transaction():
        await store.lock_keys(conn)
        if not await store.list_keys(conn):
            await _add(conn, alg, datetime.now(UTC))


async def rotate(conn: Connection, alg: str, token_ttl: timedelta, activate_in: timedelta = timedelta(0)) -> str:
    """Add a new signing key (active after ``activate_in``); prune keys no token can need. Returns its kid."""
    async with conn.transaction():
        await store.lock_keys(conn)
        kid = await _add(conn, alg, datetime.now(UTC) + activate_in)
        state = key_state(await store.list_keys(conn), token_ttl)
        await store.delete_keys(conn, list(state.expired_kids))
    return kid


async def _add(conn: Connection, alg: str, activated_at: datetime) -> str:
    key = generate_key(alg)
    kid = str(key.kid)
    await store.add_key(conn, kid, alg, key.as_dict(private=True), key.as_dict(private=False), activated_at)
    return kid


def sign(key: SigningKey, claims: dict[str, Any]) -> str:
    """An RFC 9068 access token: ``typ`` at+jwt, signed with ``key`` only."""
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    return jwt.encode(header, claims, key.key, algorithms=[key.alg])
