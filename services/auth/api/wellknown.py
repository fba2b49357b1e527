"""RFC 8414 metadata and the JWKS every resource server verifies tokens with."""

from __future__ import annotations

from typing import Any

from quart import Blueprint
from quart_schema import document_response

from services.auth.config import AuthSettings
from services.auth.runtime import runtime
from services.auth.schemas import JwksOut, MetadataOut
from services.auth.scopes import ALL_SCOPES

bp = Blueprint("wellknown", __name__)


def metadata(settings: AuthSettings) -> dict[str, Any]:
    issuer = settings.issuer
    client_auth = ["client_secret_basic", "client_secret_post"]
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth/authorize",
        "token_endpoint": f"{issuer}/auth/token",
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}/auth/revoke",
        "introspection_endpoint": f"{issuer}/auth/introspect",
        "scopes_supported": list(ALL_SCOPES),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "token_endpoint_auth_methods_supported": [*client_auth, "none"],
        "revocation_endpoint_auth_methods_supported": [*client_auth, "none"],
        "introspection_endpoint_auth_methods_supported": client_auth,
        "code_challenge_methods_supported": ["S256"],
        "service_documentation": f"{issuer}/docs",
    }


@bp.get("/.well-known/oauth-authorization-server")
@document_response(MetadataOut)
async def server_metadata() -> tuple[dict[str, Any], int, dict[str, str]]:
    """RFC 8414 authorization server metadata."""
    return metadata(runtime().settings), 200, {"Cache-Control": "public, max-age=300"}


@bp.get("/.well-known/jwks.json")
@document_response(JwksOut)
async def jwks() -> tuple[dict[str, Any], int, dict[str, str]]:
    """The public signing keys: the current one, and retired ones until their last token expires."""
    # Short cache: a resource server that misses a new kid refetches anyway.
    return await runtime().keys.jwks(), 200, {"Cache-Control": "public, max-age=60"}
