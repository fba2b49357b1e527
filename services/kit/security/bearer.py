"""Bearer-token checks in a kit app: ``install_auth`` wires a verifier, ``require_scope`` guards handlers.

::

    app = create_service_app(settings, blueprints=[bp], security_schemes=BEARER_SECURITY_SCHEME, ...)
    install_auth(app, audience="quartet")

    @bp.get("/todos")
    @require_scope("todos:read")
    async def list_todos() -> ...:
        owner = current_user_id()  # or current_caller(); g.claims and g.user_id are set too

A missing or invalid token answers 401 problem+json with ``WWW-Authenticate:
Bearer``; a valid token without every required scope answers 403 (RFC 6750 §3.1).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import aiohttp
from quart import Quart, g, request

from services.kit.context import ServiceKit, current_kit, kit_of
from services.kit.contract import BEARER_SCHEME_NAME as BEARER_SCHEME_NAME
from services.kit.contract import mark_scopes
from services.kit.security.challenge import insufficient_scope, verified_claims
from services.kit.security.claims import Claims
from services.kit.security.verifier import JwksFetcher, TokenVerifier
from services.kit.tracing import request_id_trace_config

DEFAULT_AUDIENCE = "quartet"
BEARER_SECURITY_SCHEME: dict[str, Any] = {
    BEARER_SCHEME_NAME: {"type": "http", "scheme": "bearer", "bearer_format": "JWT"}
}

P = ParamSpec("P")
R = TypeVar("R")


def install_auth(
    app: Quart,
    *,
    audience: str = DEFAULT_AUDIENCE,
    issuer: str | None = None,
    jwks_url: str | None = None,
    fetch_jwks: JwksFetcher | None = None,
    leeway: int = 30,
) -> None:
    """Create a :class:`TokenVerifier` when the app starts (``kit.verifier``).

    The issuer defaults to ``settings.issuer`` (``PUBLIC_URL``, else ``AUTH_URL``) and the
    JWKS to ``<AUTH_URL>/.well-known/jwks.json`` (the internal address). The verifier gets its
    own small aiohttp session (``kit.verifier_session``, closed at stop) unless ``fetch_jwks``
    supplies the keys, and a background task ``jwks-refresh`` refetching the JWKS every
    ``settings.jwks_refresh_seconds``. Lifetime cap and cache time come from
    ``settings.token_max_lifetime_seconds`` and ``token_cache_seconds``.
    """
    kit = kit_of(app)

    async def start(kit: ServiceKit) -> None:
        settings = kit.settings
        iss = issuer or settings.issuer
        url = jwks_url or f"{settings.auth_url.rstrip('/')}/.well-known/jwks.json"
        if fetch_jwks is None:
            kit.verifier_session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=4),
                timeout=aiohttp.ClientTimeout(total=5, connect=2),
                raise_for_status=False,
                trace_configs=[request_id_trace_config()],  # a JWKS refresh names the request that caused it
            )
        verifier = kit.verifier = TokenVerifier(
            iss,
            audience,
            url,
            kit.verifier_session,
            leeway,
            fetch_jwks=fetch_jwks,
            refresh_seconds=settings.jwks_refresh_seconds,
            cache_seconds=settings.token_cache_seconds,
            max_lifetime_seconds=settings.token_max_lifetime_seconds,
        )
        await verifier.refresh()  # warm the cache; a failure here is retried on first use
        kit.tasks.start("jwks-refresh", verifier.keep_fresh)

    async def stop(kit: ServiceKit) -> None:
        # The refresh task is stopped already (the kit stops tasks before the stop hooks).
        session, kit.verifier_session = kit.verifier_session, None
        if session is not None:
            await session.close()

    async def keys_loaded() -> None:
        # Not ready until tokens can be judged: before the issuer's keys arrive every
        # request would get 503, so load balancers should not send any yet.
        verifier = kit.verifier
        if verifier is None:
            raise RuntimeError("token verifier not started")
        if not verifier.has_keys:
            await verifier.refresh()
        if not verifier.has_keys:
            raise ConnectionError("the issuer's keys are not loaded yet")

    kit.on_start.append(start)
    kit.on_stop.append(stop)
    kit.readiness_checks["token_keys"] = keys_loaded


def current_verifier() -> TokenVerifier:
    verifier = current_kit().verifier
    if verifier is None:
        raise RuntimeError("install_auth(app) was not called for this service")
    return verifier


async def authenticate(*scopes: str) -> Claims:
    """Verify the request's bearer token and its scopes; set ``g.claims`` and ``g.user_id``."""
    claims = await verified_claims(current_verifier(), request.headers.get("Authorization"))
    if not claims.has_scopes(*scopes):
        raise insufficient_scope(*scopes)
    g.claims = claims
    g.user_id = claims.user_id
    return claims


def require_scope(*scopes: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Decorate a handler so it runs only for a valid access token holding every one of ``scopes``.

    The OpenAPI operation says so: ``security: [{"bearer": [<scopes>]}]`` (OpenAPI 3.1
    lets a non-OAuth scheme list the roles it needs), which the gateway's docs turn into
    its OAuth sign-in.
    """

    def decorate(handler: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @wraps(handler)
        async def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            await authenticate(*scopes)
            return await handler(*args, **kwargs)

        return mark_scopes(guarded, scopes)

    return decorate
