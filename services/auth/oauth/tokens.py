"""The token generator authlib calls: RFC 9068 JWT access tokens and opaque refresh tokens."""

from __future__ import annotations

import secrets
import time
from uuid import uuid4

from authlib.oauth2.rfc6749 import InvalidScopeError

from services.auth.oauth.models import IssuedToken
from services.auth.oauth.storage import OAuthStorage
from services.auth.scopes import cut_down
from services.auth.signing import sign
from services.auth.store.rows import Client, User


class TokenGenerator:
    """``server.register_token_generator("default", TokenGenerator(storage))``."""

    def __init__(self, storage: OAuthStorage) -> None:
        self._storage = storage

    def __call__(
        self,
        grant_type: str,
        client: Client,
        user: User | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> IssuedToken:
        settings = self._storage.settings
        # Whatever a grant asked for, a token never carries a scope its client (and user) may not have.
        granted = cut_down(scope, client.scopes, *([user.scopes] if user else []))
        if not granted:
            raise InvalidScopeError()
        ttl = min(expires_in or settings.access_token_ttl_seconds, settings.access_token_ttl_seconds)
        now = int(time.time())
        jti = uuid4()
        claims = {
            "iss": settings.issuer,
            # RFC 9068 §2.2: without a resource owner, the subject is the client itself.
            "sub": str(user.id) if user else client.client_id,
            "aud": settings.access_token_audience,
            "client_id": client.client_id,
            "scope": granted,
            "jti": str(jti),
            "iat": now,
            "exp": now + ttl,
        }
        body = {
            "token_type": "Bearer",
            "access_token": sign(self._storage.signing_key(), claims),
            "expires_in": ttl,
            "scope": granted,
        }
        if include_refresh_token and user is not None:
            body["refresh_token"] = secrets.token_urlsafe(48)
        return IssuedToken(body, jti=jti, issued_at=now, expires_at=now + ttl, scope=granted)
