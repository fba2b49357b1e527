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

from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from gateway.background import background_task
from gateway.config import GatewaySettings
from gateway.headers import has_dot_segments
from gateway.middleware import EXCHANGE
from gateway.routing import PREFIXES, Requirement, requirement_for
from services.kit.logging import get_logger
from services.kit.problem import Problem
from services.kit.security.challenge import bearer_token as bearer_token  # re-exported for its callers
from services.kit.security.challenge import insufficient_scope, verified_claims
from services.kit.security.claims import Claims
from services.kit.security.verifier import TokenVerifier

log = get_logger("gateway.auth")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


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

        async with background_task(warm_then_keep_fresh()):
            yield

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
        # Verified tokens are cached by the verifier, bounded (kit settings).
        claims = await verified_claims(self.verifier, request.headers.get("Authorization"))
        if not requirement.allows(claims):
            raise insufficient_scope(detail=f"the token carries no {requirement.family}* scope")
        return claims
