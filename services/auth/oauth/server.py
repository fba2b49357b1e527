"""The authorization server: authlib's, with our storage, token generator, grants and endpoints."""

from __future__ import annotations

from typing import Any

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request

from services.auth.oauth.bridge import OAuthResponse, QuartetOAuth2Request, RequestSnapshot
from services.auth.oauth.endpoints import Introspection, Revocation
from services.auth.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from services.auth.oauth.storage import OAuthStorage
from services.auth.oauth.tokens import TokenGenerator
from services.auth.scopes import ALL_SCOPES
from services.auth.store.rows import Client
from services.kit.logging import get_logger

log = get_logger("auth.oauth")


class QuartetAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Synchronous, like all of authlib: call it through ``SyncBridge.run`` only."""

    def __init__(self, storage: OAuthStorage) -> None:
        super().__init__(scopes_supported=list(ALL_SCOPES))
        self.storage = storage
        self.register_token_generator("default", TokenGenerator(storage))
        self.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.register_grant(RefreshTokenGrant)
        self.register_grant(ClientCredentialsGrant)
        self.register_endpoint(Revocation)
        self.register_endpoint(Introspection)

    def query_client(self, client_id: str) -> Client | None:
        return self.storage.client(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        raise NotImplementedError("each grant saves its own tokens (see services.auth.oauth.grants)")

    def create_oauth2_request(self, request: RequestSnapshot | OAuth2Request) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        return QuartetOAuth2Request(request)

    def create_json_request(self, request: Any) -> Any:
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body: Any, headers: Any) -> OAuthResponse:
        return OAuthResponse(status, body, list(headers or []))

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        if name == "after_revoke_token":
            client = kwargs.get("client")
            log.info("token revoked", client_id=getattr(client, "client_id", None))
