"""Token signing keys: kept in the auth database (private parts sealed, see ``sealing``), the
newest activated one signs.

``rotate-keys`` adds a key; from then on new tokens carry its ``kid``. A retired key
stays in the JWKS until the last token it signed has expired (its successor's
activation + the access-token lifetime + a margin for clock skew), then it is pruned.
``revoke-key`` removes a key at once (``key_lifecycle``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey, JWKRegistry, Key, OKPKey, RSAKey

from services.auth.sealing import KeyEncryptionKeys
from services.auth.store import keys as store
from services.kit.db import Database

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
    """Reads the key table on every use (so a rotation or revocation by any instance takes
    effect at once) and caches the imported keys by ``kid``; a private key is unsealed once."""

    def __init__(self, db: Database, token_ttl: timedelta, keks: KeyEncryptionKeys) -> None:
        self._db = db
        self._ttl = token_ttl
        self._keks = keks
        self._imported: dict[tuple[str, bool], Key] = {}

    async def state(self) -> KeyState:
        async with self._db.connection() as conn:
            return key_state(await store.list_keys(conn), self._ttl)

    async def signing_key(self) -> SigningKey:
        row = (await self.state()).current
        return SigningKey(row.kid, row.alg, self.private_key(row))

    async def jwks(self) -> dict[str, Any]:
        return {"keys": list((await self.state()).published)}

    async def public_key(self, kid: str) -> SigningKey | None:
        """A published key by ``kid`` (to check tokens this service issued)."""
        for jwk in (await self.state()).published:
            if jwk.get("kid") == kid:
                return SigningKey(kid, str(jwk["alg"]), self._import(kid, jwk, private=False))
        return None

    def private_key(self, row: store.KeyRow) -> Key:
        """The row's private key, unsealed with the KEKs (:class:`~services.auth.sealing.SealError` if it
        cannot be). A legacy plaintext row (written by an older instance) is used as is until the next
        start seals it."""
        cached = self._imported.get((row.kid, True))
        if cached is None:
            jwk = self._keks.open(row.kid, row.sealed) if row.sealed is not None else row.legacy_private_jwk
            if jwk is None:
                raise LookupError(f"signing key {row.kid} has no private part")
            cached = self._imported[(row.kid, True)] = JWKRegistry.import_key(jwk)
        return cached

    def _import(self, kid: str, jwk: dict[str, Any], *, private: bool) -> Key:
        cached = self._imported.get((kid, private))
        if cached is None:
            cached = self._imported[(kid, private)] = JWKRegistry.import_key(jwk)
        return cached


def sign(key: SigningKey, claims: dict[str, Any]) -> str:
    """An RFC 9068 access token: ``typ`` at+jwt, signed with ``key`` only."""
    header = {"alg": key.alg, "kid": key.kid, "typ": "at+jwt"}
    return jwt.encode(header, claims, key.key, algorithms=[key.alg])
