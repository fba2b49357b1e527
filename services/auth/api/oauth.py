"""The OAuth endpoints authlib answers: token, revocation, introspection (errors as RFC 6749 says)."""

from __future__ import annotations

from quart import Blueprint, Response
from quart_schema import DataSource, document_request, document_response

from services.auth.oauth.bridge import OAuthResponse, RequestSnapshot, snapshot, to_quart
from services.auth.runtime import runtime
from services.auth.schemas import (
    IntrospectionOut,
    RevokedOut,
    TokenForm,
    TokenForm7009,
    TokenOut,
    has_control_characters,
)
from services.kit.contract import oauth_errors

bp = Blueprint("oauth", __name__)


def _malformed(request: RequestSnapshot) -> Response | None:
    """RFC 6749 ``invalid_request`` for a parameter with a control character (NUL, ...).

    No token, code, client id or scope holds one; refusing here keeps such values away
    from authlib and PostgreSQL (which rejects NUL in text).
    """
    values = [*request.form.values(), *request.args.values()]
    if not any(has_control_characters(value) for value in values):
        return None
    body = {"error": "invalid_request", "error_description": "a parameter contains a control character"}
    return to_quart(OAuthResponse(400, body, [("Content-Type", "application/json"), ("Pragma", "no-cache")]))


@bp.post("/auth/token")
@document_request(TokenForm, source=DataSource.FORM)
@document_response(TokenOut)
@oauth_errors
async def token() -> Response:
    """RFC 6749 token endpoint (form-encoded): authorization_code + PKCE, refresh_token, client_credentials."""
    rt = runtime()
    request = await snapshot(rt.settings.issuer)
    if (refused := _malformed(request)) is not None:
        return refused
    return to_quart(await rt.bridge.run(rt.server.create_token_response, request))


@bp.post("/auth/revoke")
@document_request(TokenForm7009, source=DataSource.FORM)
@document_response(RevokedOut)
@oauth_errors
async def revoke() -> Response:
    """RFC 7009: revoke an access token, or a refresh token with its whole grant. Always 200."""
    rt = runtime()
    request = await snapshot(rt.settings.issuer)
    if (refused := _malformed(request)) is not None:
        return refused
    return to_quart(await rt.bridge.run(rt.server.create_endpoint_response, "revocation", request))


@bp.post("/auth/introspect")
@document_request(TokenForm7009, source=DataSource.FORM)
@document_response(IntrospectionOut)
@oauth_errors
async def introspect() -> Response:
    """RFC 7662, for confidential clients: is this token active, and what does it carry?"""
    rt = runtime()
    request = await snapshot(rt.settings.issuer)
    if (refused := _malformed(request)) is not None:
        return refused
    return to_quart(await rt.bridge.run(rt.server.create_endpoint_response, "introspection", request))
