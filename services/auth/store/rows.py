"""The auth service's rows, as its store returns them; authlib's grants and endpoints work with them directly.

``Client``, ``AuthorizationCode`` and ``StoredToken`` carry authlib's mixins, so the
server needs no second set of objects. ``KeyRow`` (signing keys) lives with its SQL in ``keys.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin

from services.auth.passwords import verify_secret
from services.auth.scopes import USER_SCOPES, cut_down

CONFIDENTIAL_AUTH_METHODS = frozenset({"client_secret_basic", "client_secret_post"})


@dataclass(frozen=True)
class User:
    id: UUID
    email: str
    name: str | None
    created_at: datetime
    password_hash: str

    @property
    def scopes(self) -> tuple[str, ...]:
        return USER_SCOPES


@dataclass(frozen=True)
class Client(ClientMixin):  # type: ignore[misc]
    client_id: str
    name: str
    secret_hash: str | None
    redirect_uris: tuple[str, ...]
    grant_types: frozenset[str]
    scopes: tuple[str, ...]
    # How a secret is checked against secret_hash (the service hands in its bounded argon2 pool).
    secret_checker: Callable[[str, str], bool] = field(default=verify_secret, compare=False, repr=False)

    @property
    def is_confidential(self) -> bool:
        return self.secret_hash is not None

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # every authorization request must name its redirect_uri

    def get_allowed_scope(self, scope: str | None) -> str | None:
        granted = cut_down(scope, self.scopes)
        return granted or None

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact string match, no prefixes or patterns

    def check_client_secret(self, client_secret: str) -> bool:
        return self.secret_hash is not None and self.secret_checker(self.secret_hash, client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_confidential:
            return method in CONFIDENTIAL_AUTH_METHODS
        return method == "none" and endpoint in {"token", "revocation"}

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


@dataclass(frozen=True)
class AuthorizationCode(AuthorizationCodeMixin):  # type: ignore[misc]
    code_hash: bytes
    family_id: UUID
    client_id: str
    user_id: UUID
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    expires_at: datetime
    used_at: datetime | None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass(frozen=True)
class StoredToken(TokenMixin):  # type: ignore[misc]
    """An access token (by ``jti``) or a refresh token (by hash) as the database knows it."""

    kind: str  # "access_token" | "refresh_token"
    key: UUID | bytes  # jti, or the refresh token's hash
    family_id: UUID | None
    client_id: str
    user_id: UUID | None
    scope: str
    issued_at: datetime
    expires_at: datetime
    revoked: bool

    def check_client(self, client: Client) -> bool:
        return self.client_id == client.client_id

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.expires_at.timestamp() - time.time()))

    def is_expired(self) -> bool:
        return self.expires_at.timestamp() <= time.time()

    def is_revoked(self) -> bool:
        return self.revoked

    def introspection(self, issuer: str, audience: str) -> dict[str, Any]:
        """RFC 7662 §2.2 fields of an active token."""
        body: dict[str, Any] = {
            "active": True,
            "token_type": "Bearer" if self.kind == "access_token" else "refresh_token",
            "scope": self.scope,
            "client_id": self.client_id,
            "sub": str(self.user_id) if self.user_id else self.client_id,
            "iss": issuer,
            "iat": int(self.issued_at.timestamp()),
            "exp": int(self.expires_at.timestamp()),
        }
        if self.kind == "access_token":
            body["aud"] = audience
            body["jti"] = str(self.key)
        return body
