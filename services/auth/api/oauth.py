"""The OAuth endpoints authlib answers: token, revocation, introspection (errors as RFC 6749 says)."""

from __future__ import annotations

from quart import Blueprint, Response
from quart_schema import hide

from services.auth.oauth.bridge import snapshot, to_quart
from services.auth.runtime import runtime

bp = Blueprint("oauth", __name__)


@bp.post("/auth/token")
@hide
async def token() -> Response:
    """RFC 6749 token endpoint (form-encoded): authorization_code + PKCE, refresh_token, client_credentials."""
    rt = runtime()
    request = await snapshot(rt.settings.issuer)
    return to_quart(await rt.bridge.run(rt.server.create_token_response, request))


@bp.post("/auth/revoke")
@hide
async def revoke() -> Response:
    """RFC 7009: revoke an access token, or a refresh token with its whole grant. Always 200."""
    rt = runtime()
    request = await snapshot(rt.settings.issuer)
    return to_quart(await rt.bridge.run(rt.server.create_endpoint_response, "revocation", request))


@bp.post("/auth/introspect")
@hide
async def introspect() -> Response:
    """RFC 7662, for confidential clients: is this token active, and what does it carry?"""
    rt = runtime()
    request = await snapshot(rt.settings.issuer)
    return to_quart(await rt.bridge.run(rt.server.create_endpoint_response, "introspection", request))
