"""Token revocation (RFC 7009) and introspection (RFC 7662, confidential clients only)."""

from __future__ import annotations

from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7662 import IntrospectionEndpoint

from services.auth.oauth.storage import OAuthStorage
from services.auth.store.rows import Client, StoredToken


def _storage(endpoint: Any) -> OAuthStorage:
    storage = endpoint.server.storage
    assert isinstance(storage, OAuthStorage)
    return storage


class Revocation(RevocationEndpoint):  # type: ignore[misc]
    # A public client (the SPA) may revoke its own tokens when its user logs out.
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        return _storage(self).find_token(token_string, token_type_hint)

    def revoke_token(self, token: StoredToken, request: OAuth2Request) -> None:
        _storage(self).revoke(token)


class Introspection(IntrospectionEndpoint):  # type: ignore[misc]
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string: str, token_type_hint: str | None) -> StoredToken | None:
        return _storage(self).find_token(token_string, token_type_hint)

    def check_permission(self, token: StoredToken, client: Client, request: OAuth2Request) -> bool:
        return client.is_confidential

    def introspect_token(self, token: StoredToken) -> dict[str, Any]:
        settings = _storage(self).settings
        return token.introspection(settings.issuer, settings.access_token_audience)
