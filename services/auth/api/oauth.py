"""The OAuth endpoints authlib answers: token, revocation, introspection (errors as RFC 6749 says)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pydantic import BaseModel
from quart import Blueprint, Response
from quart_schema import DataSource, document_request, document_response

from services.auth.oauth.bridge import OAuthResponse, RequestSnapshot, snapshot, to_quart
from services.auth.oauth.server import QuartetAuthorizationServer
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

Handler = Callable[[], Awaitable[Response]]


def _endpoint(path: str, form: type[BaseModel], answer: type[BaseModel]) -> Callable[[Handler], Handler]:
    """Route a POST of a form-encoded OAuth request; documented, its errors as RFC 6749 says."""

    def register(handler: Handler) -> Handler:
        documented = document_request(form, source=DataSource.FORM)(document_response(answer)(oauth_errors(handler)))
        return bp.post(path)(documented)

    return register


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


async def _answer(respond: Callable[[QuartetAuthorizationServer, RequestSnapshot], OAuthResponse]) -> Response:
    """The request, unless malformed, answered by authlib's server (``respond``) in the bridge's pool."""
    rt = runtime()
    request = await snapshot(rt.settings.issuer)
    if (refused := _malformed(request)) is not None:
        return refused
    return to_quart(await rt.bridge.run(respond, rt.server, request))


@_endpoint("/auth/token", TokenForm, TokenOut)
async def token() -> Response:
    """RFC 6749 token endpoint (form-encoded): authorization_code + PKCE, refresh_token, client_credentials."""
    return await _answer(lambda server, request: server.create_token_response(request))


@_endpoint("/auth/revoke", TokenForm7009, RevokedOut)
async def revoke() -> Response:
    """RFC 7009: revoke an access token, or a refresh token with its whole grant. Always 200."""
    return await _answer(lambda server, request: server.create_endpoint_response("revocation", request))


@_endpoint("/auth/introspect", TokenForm7009, IntrospectionOut)
async def introspect() -> Response:
    """RFC 7662, for confidential clients: is this token active, and what does it carry?"""
    return await _answer(lambda server, request: server.create_endpoint_response("introspection", request))
