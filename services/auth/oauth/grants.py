"""authlib's grants, with the storage they need and the rules RFC 9700 asks for.

- Authorization code: PKCE with S256 required for every client; redirect_uri required
  and matched exactly; codes single use (see ``OAuthStorage.save_token``).
- Refresh token: rotated on every use; a reused one revokes its family.
- Client credentials: confidential clients only.
There is no password grant.
"""

from __future__ import annotations

import hmac
from typing import Any

from authlib.oauth2.rfc6749 import InvalidRequestError, OAuth2Request, grants
from authlib.oauth2.rfc7636 import CodeChallenge, create_s256_code_challenge

from services.auth.oauth.models import IssuedToken
from services.auth.oauth.storage import OAuthStorage
from services.auth.store.rows import AuthorizationCode, Client, StoredToken, User

PUBLIC_AND_CONFIDENTIAL = ["client_secret_basic", "client_secret_post", "none"]


def _storage(grant: Any) -> OAuthStorage:
    storage = grant.server.storage
    assert isinstance(storage, OAuthStorage)
    return storage


class S256CodeChallenge(CodeChallenge):  # type: ignore[misc]
    """PKCE, S256 only, required on every authorization request (``plain`` and none are refused)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"
    CODE_CHALLENGE_METHODS = {
        "S256": lambda verifier, challenge: hmac.compare_digest(create_s256_code_challenge(verifier), challenge)
    }

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: send code_challenge with code_challenge_method=S256.")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_AND_CONFIDENTIAL

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        _storage(self).save_code(code, request.client, request.user, request.payload.data, request.scope)

    def query_authorization_code(self, code: str, client: Client) -> AuthorizationCode | None:
        return _storage(self).find_code(code, client)

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        """Nothing to do: the code was spent when its tokens were saved (kept to detect reuse)."""

    def authenticate_user(self, authorization_code: AuthorizationCode) -> User | None:
        return _storage(self).user(authorization_code.user_id)

    def save_token(self, token: IssuedToken) -> None:
        request = self.request
        _storage(self).save_token(token, self.GRANT_TYPE, request.client, request.user, request.authorization_code)


class RefreshTokenGrant(grants.RefreshTokenGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = PUBLIC_AND_CONFIDENTIAL
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> StoredToken | None:
        return _storage(self).find_refresh_token(refresh_token)

    def authenticate_user(self, refresh_token: StoredToken) -> User | None:
        return _storage(self).user(refresh_token.user_id) if refresh_token.user_id else None

    def revoke_old_credential(self, refresh_token: StoredToken) -> None:
        """Nothing to do: the old token was rotated out when the new one was saved."""

    def save_token(self, token: IssuedToken) -> None:
        request = self.request
        _storage(self).save_token(token, self.GRANT_TYPE, request.client, request.user, request.refresh_token)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def save_token(self, token: IssuedToken) -> None:
        _storage(self).save_token(token, self.GRANT_TYPE, self.request.client, None, None)
