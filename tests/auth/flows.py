"""The client's OAuth flows (quartet_client.auth) with the tests' defaults.

The tests' users share one password, the worker client has the secret the test
harness gives it, and a test gets the bodies as plain dicts to poke at.
"""

from __future__ import annotations

import secrets

import httpx

from quartet_client.auth import (
    DEFAULT_SCOPE,
    WEB_CLIENT,
    WEB_REDIRECT,
    WORKER_CLIENT,
    AuthClient,
    Authorization,
    Tokens,
    UserProfile,
    authorization,
    hidden_fields,
    pkce_pair,
    query_of,
)

WORKER_SECRET = "test-worker-secret"
PASSWORD = "correct horse battery"

__all__ = [
    "PASSWORD",
    "WEB_CLIENT",
    "WEB_REDIRECT",
    "WORKER_CLIENT",
    "WORKER_SECRET",
    "AuthFlows",
    "Authorization",
    "authorization",
    "hidden_fields",
    "pkce_pair",
    "query_of",
]


class AuthFlows(AuthClient):
    async def register(
        self, email: str | None = None, password: str = PASSWORD, name: str | None = "Test"
    ) -> UserProfile:
        return await super().register(email or f"user-{secrets.token_hex(6)}@example.com", password, name)

    async def authorize(self, auth: Authorization, email: str, password: str = PASSWORD) -> dict[str, str]:
        return await super().authorize(auth, email, password)

    async def sign_in(self, email: str, scope: str = DEFAULT_SCOPE, password: str = PASSWORD) -> Tokens:
        return await super().sign_in(email, scope, password)

    async def client_credentials(
        self, scope: str | None = None, *, secret: str = WORKER_SECRET, client_id: str = WORKER_CLIENT
    ) -> httpx.Response:
        return await super().client_credentials(scope, secret=secret, client_id=client_id)

    async def introspect(
        self, token: str, *, auth: tuple[str, str] | None = (WORKER_CLIENT, WORKER_SECRET)
    ) -> httpx.Response:
        return await super().introspect(token, auth=auth)
