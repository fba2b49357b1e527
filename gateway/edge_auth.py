"""Token checks at the edge: protected routes without a valid access token never reach a service.

The gateway checks what it can check cheaply and without knowing each service's
rules: a signed, unexpired access token of our issuer and audience (the kit's
:class:`TokenVerifier`, keys from the JWKS, no call to auth per request) that
carries what the route's row in :data:`gateway.routing.TABLE` asks for: any valid
token (``/auth/me``), or one with at least one scope of the route's family (``todos:*``
for ``/todos``, ``reports:*`` for ``/reports``). The exact scope a handler needs
(``todos:write`` for a POST, ``profile`` for ``/auth/me``) stays with the service,
which verifies the token again: one place per rule, and the gateway never has to
learn a service's endpoints.

Verified tokens are cached by their string until they expire, so the hot path is
a dictionary look-up.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.config import GatewaySettings
from gateway.headers import has_dot_segments
from gateway.middleware import EXCHANGE
from gateway.routing import PREFIXES, Requirement, requirement_for
from services.kit.logging import get_logger
from services.kit.problem import Problem
from services.kit.security.verifier import Claims, InvalidToken, KeysUnavailable, TokenVerifier

log = get_logger("gateway.auth")

REALM = "quartet"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def bearer_token(authorization: str) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, else None."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class EdgeAuth:
    """The verifier, its cache, and the middleware that applies each route's :class:`Requirement`."""

    def __init__(self, settings: GatewaySettings, session: Callable[[], aiohttp.ClientSession]) -> None:
        self.verifier = TokenVerifier(
            settings.issuer,
            settings.token_audience,
            settings.jwks,
            session,
            settings.token_leeway_seconds,
            cache_size=settings.token_cache_size,
            cache_seconds=settings.token_cache_seconds,
            max_lifetime_seconds=settings.token_max_lifetime_seconds,
            refresh_seconds=settings.jwks_refresh_seconds,
        )

    async def warm_up(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: fetch the signing keys in the background, so the first request need not,
        then keep them fresh on the verifier's schedule (a revoked key leaves within one period)."""

        async def warm_then_keep_fresh() -> None:
            await self.verifier.refresh()
            await self.verifier.keep_fresh()

        task = asyncio.create_task(warm_then_keep_fresh())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def claims_for(self, token: str) -> Claims:
        return await self.verifier.verify(token)  # cached by the verifier, bounded (kit settings)

    def middleware(self, on_reject: Callable[[int], None]) -> Middleware:
        @web.middleware
        async def edge_auth(request: web.Request, handler: Handler) -> web.StreamResponse:
            if has_dot_segments(request.rel_url.raw_path) and any(_under(request.path, p) for p, _ in PREFIXES):
                # Decided before the token check: "/todos/../ping" must not pass as either.
                raise Problem(400, "the path must not contain '.' or '..' segments")
            requirement = requirement_for(request.path)
            if requirement is None:
                return await handler(request)
            try:
                claims = await self._check(request, requirement)
            except Problem as problem:
                on_reject(problem.status)
                raise
            request[EXCHANGE].subject = claims.sub
            return await handler(request)

        return edge_auth

    async def _check(self, request: web.Request, requirement: Requirement) -> Claims:
        token = bearer_token(request.headers.get("Authorization", ""))
        if token is None:
            raise Problem(401, "an access token is required", headers={"WWW-Authenticate": f'Bearer realm="{REALM}"'})
        try:
            claims = await self.claims_for(token)
        except InvalidToken as error:
            raise Problem(
                401,
                str(error),
                headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="invalid_token"'},
            ) from None
        except KeysUnavailable:
            raise Problem(503, "tokens cannot be checked right now; try again", headers={"Retry-After": "1"}) from None
        if not requirement.allows(claims):
            raise Problem(
                403,
                f"the token carries no {requirement.family}* scope",
                headers={"WWW-Authenticate": f'Bearer realm="{REALM}", error="insufficient_scope"'},
            )
        return claims
