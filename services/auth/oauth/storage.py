"""What authlib's server, grants and endpoints need from the database, callable from pool threads.

Every method here runs in a worker thread of the :class:`SyncBridge` and reaches the
async store through ``bridge.wait``. Single use of codes and refresh tokens is decided
in :meth:`OAuthStorage.save_token`: spending the old credential and recording the new
tokens happen in one transaction, and a credential spent twice revokes its family.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID, uuid4

from authlib.oauth2.rfc6749 import InvalidGrantError, InvalidScopeError
from joserfc import jwt
from joserfc.errors import JoseError

from services.auth.config import AuthSettings
from services.auth.oauth.bridge import SyncBridge
from services.auth.oauth.models import IssuedToken
from services.auth.passwords import Passwords
from services.auth.schemas import has_control_characters
from services.auth.scopes import cut_down
from services.auth.signing import KeyRing, SigningKey
from services.auth.store import clients, grants, users
from services.auth.store.rows import AuthorizationCode, Client, StoredToken, User
from services.kit.db import Connection, Database
from services.kit.logging import get_logger
from services.kit.security.verifier import InvalidToken, unverified_header

log = get_logger("auth.oauth")
T = TypeVar("T")


def token_hash(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


class OAuthStorage:
    def __init__(
        self, bridge: SyncBridge, db: Database, keys: KeyRing, passwords: Passwords, settings: AuthSettings
    ) -> None:
        self.bridge = bridge
        self.keys = keys
        self.settings = settings
        self._db = db
        self._passwords = passwords

    # --- plumbing: one connection (or transaction) per storage call ---------------------

    def _read(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        async def go() -> T:
            async with self._db.connection() as conn:
                return await fn(conn)

        return self.bridge.wait(go())

    def _write(self, fn: Callable[[Connection], Awaitable[T]]) -> T:
        async def go() -> T:
            async with self._db.transaction() as conn:
                return await fn(conn)

        return self.bridge.wait(go())

    # --- clients, users, keys -----------------------------------------------------------

    def client(self, client_id: str) -> Client | None:
        if has_control_characters(client_id):
            return None  # no client has such an id (and PostgreSQL refuses NUL): invalid_client
        client = self._read(lambda conn: clients.get_client(conn, client_id))
        # argon2 for client secrets runs in the hashing pool too, which bounds its memory use.
        return replace(client, secret_checker=self._passwords.verify_from_thread) if client else None

    def user(self, user_id: UUID) -> User | None:
        return self._read(lambda conn: users.get_user(conn, user_id))

    def signing_key(self) -> SigningKey:
        return self.bridge.wait(self.keys.signing_key())

    # --- authorization codes --------------------------------------------------------------

    def save_code(self, code: str, client: Client, user: User, params: dict[str, Any], scope: str) -> None:
        granted = cut_down(scope, client.scopes, user.scopes)
        if not granted:
            raise InvalidScopeError()
        now = datetime.now(UTC)
        record = AuthorizationCode(
            code_hash=token_hash(code),
            family_id=uuid4(),
            client_id=client.client_id,
            user_id=user.id,
            redirect_uri=params["redirect_uri"],
            scope=granted,
            code_challenge=params["code_challenge"],
            code_challenge_method=params["code_challenge_method"],
            expires_at=now + timedelta(seconds=self.settings.authorization_code_ttl_seconds),
            used_at=None,
        )
        lifetime = timedelta(seconds=self.settings.refresh_token_ttl_seconds)

        async def store(conn: Connection) -> None:
            await grants.create_family(conn, record.family_id, client.client_id, user.id, lifetime)
            await grants.add_code(conn, record.code_hash, record, auth_time=now)

        self._write(store)

    def find_code(self, code: str, client: Client) -> AuthorizationCode | None:
        record = self._read(lambda conn: grants.find_code(conn, token_hash(code), client.client_id))
        if record is None:
            return None
        if record.used_at is not None:
            # RFC 6749 §4.1.2: a code used twice is refused and what it issued is revoked.
            log.warning("authorization code reused; revoking its tokens", client_id=client.client_id)
            self.revoke_family(record.family_id)
            return None
        return record if record.expires_at > datetime.now(UTC) else None

    # --- refresh tokens -----------------------------------------------------------------

    def find_refresh_token(self, value: str) -> StoredToken | None:
        found = self._read(lambda conn: grants.find_refresh_token(conn, token_hash(value)))
        if found is None:
            return None
        stored, rotated = found
        assert stored.family_id is not None  # every refresh token belongs to a family
        if rotated:
            # RFC 9700 §4.14.2: a rotated refresh token came back, so one of its holders is
            # an attacker. Revoke the whole family; both must log in again.
            log.warning("refresh token reused; revoking its family", client_id=stored.client_id)
            self.revoke_family(stored.family_id)
            return None
        if stored.revoked or stored.is_expired():
            return None
        return stored

    # --- issuing ------------------------------------------------------------------------

    def save_token(self, token: IssuedToken, grant_type: str, client: Client, user: User | None, spent: Any) -> None:
        """Record issued tokens; for a code or refresh token, spend it in the same transaction."""
        family_id: UUID | None = None
        spend: Callable[[Connection], Awaitable[bool]] | None = None
        if isinstance(spent, AuthorizationCode):
            family_id, code_hash = spent.family_id, spent.code_hash
            spend = lambda conn: grants.spend_code(conn, code_hash)  # noqa: E731
        elif isinstance(spent, StoredToken):
            family_id, old_hash = spent.family_id, spent.key
            assert isinstance(old_hash, bytes)
            spend = lambda conn: grants.rotate_refresh_token(conn, old_hash)  # noqa: E731

        async def record(conn: Connection) -> bool:
            if spend is not None and not await spend(conn):
                return False
            await grants.add_access_token(
                conn,
                token.jti,
                family_id=family_id,
                client_id=client.client_id,
                user_id=user.id if user else None,
                scope=token.scope,
                issued_at=datetime.fromtimestamp(token.issued_at, UTC),
                expires_at=datetime.fromtimestamp(token.expires_at, UTC),
            )
            if "refresh_token" in token and family_id is not None:
                await grants.add_refresh_token(conn, token_hash(token["refresh_token"]), family_id, token.scope)
            return True

        if not self._write(record):
            # Spent between our check and now: a concurrent second use of the same credential.
            if family_id is not None:
                self.revoke_family(family_id)
            raise InvalidGrantError("The grant was already used.")

    # --- introspection and revocation ------------------------------------------------------

    def find_token(self, value: str, hint: str | None) -> StoredToken | None:
        """An access token (a JWT we signed, by its jti) or a refresh token (by hash)."""
        if hint != "refresh_token" and value.count(".") == 2:
            jti = self._jti_of(value)
            if jti is not None:
                return self._read(lambda conn: grants.find_access_token(conn, jti))
        found = self._read(lambda conn: grants.find_refresh_token(conn, token_hash(value)))
        if found is None:
            return None
        stored, rotated = found
        if rotated and not stored.revoked:
            return replace(stored, revoked=True)
        return stored

    def revoke(self, token: StoredToken) -> None:
        """Revoke an access token alone; a refresh token with its whole family (RFC 7009 §2.1)."""
        if token.kind == "access_token":
            jti = token.key
            assert isinstance(jti, UUID)
            self._write(lambda conn: grants.revoke_access_token(conn, jti))
        elif token.family_id is not None:
            self.revoke_family(token.family_id)

    def revoke_family(self, family_id: UUID) -> None:
        self._write(lambda conn: grants.revoke_family(conn, family_id))

    def _jti_of(self, value: str) -> UUID | None:
        """The jti of an access token this server signed (signature checked); None otherwise."""
        try:
            kid = unverified_header(value).get("kid")
        except InvalidToken:
            return None
        key = self.bridge.wait(self.keys.public_key(kid)) if isinstance(kid, str) else None
        if key is None:
            return None
        try:
            claims = jwt.decode(value, key.key, algorithms=[key.alg]).claims
            return UUID(str(claims["jti"])) if claims.get("iss") == self.settings.issuer else None
        except (JoseError, KeyError, ValueError):
            return None
