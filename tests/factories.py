"""Small factories for test data: users and their access tokens, todos.

In-process tests trust a :class:`TestIssuer` (a signing key made for the test session)
instead of a running auth service, so a user is just a fresh id and a token minted for
it — cheap enough that every test gets users of its own. Process-level tests register
real users through ``Suite.register()``.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import RSAKey

USER_SCOPES = "profile todos:read todos:write reports:read reports:write"
AUDIENCE = "quartet"
WEB_CLIENT = "quartet-web"
# Nothing listens here: in-process services get their keys from TestIssuer.fetch_jwks.
TEST_ISSUER_URL = "http://127.0.0.1:9"


@dataclass
class User:
    id: str
    email: str
    token: str = ""


def new_email() -> str:
    return f"user-{secrets.token_hex(6)}@example.com"


class TestIssuer:
    """Mints RFC 9068 access tokens with a key of its own; services trust it through ``fetch_jwks``."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, issuer: str = TEST_ISSUER_URL) -> None:
        self.issuer = issuer
        self.kid = f"test-{uuid.uuid4().hex[:8]}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": self.kid, "alg": "RS256", "use": "sig"})

    async def fetch_jwks(self) -> Mapping[str, Any]:
        """The issuer's JWKS document: pass as ``create_app(settings, fetch_jwks=issuer.fetch_jwks)``."""
        return {"keys": [self.key.as_dict(private=False)]}

    def token(self, sub: str, scope: str = USER_SCOPES, *, client_id: str = WEB_CLIENT, **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": sub,
            "client_id": client_id,
            "scope": scope,
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 900,
            **claims,
        }
        header = {"alg": "RS256", "kid": self.kid, "typ": "at+jwt"}
        return jwt.encode(header, payload, self.key, algorithms=["RS256"], default_type=None)

    def user(self, scope: str = USER_SCOPES) -> User:
        """A new user (a fresh id) with a token for ``scope``."""
        user_id = str(uuid.uuid4())
        return User(id=user_id, email=new_email(), token=self.token(user_id, scope))

    def service_token(self, scope: str, client_id: str = "reports-worker") -> str:
        """A client-credentials token: its subject is the client, so it speaks for no user."""
        return self.token(client_id, scope, client_id=client_id)


async def create_todos(todos: httpx.AsyncClient, contents: list[str], concurrency: int = 16) -> list[dict[str, Any]]:
    """Create todos concurrently (bounded); returns them in the order of ``contents``."""
    gate = asyncio.Semaphore(concurrency)

    async def one(content: str) -> dict[str, Any]:
        async with gate:
            return await create_todo(todos, content)

    return list(await asyncio.gather(*(one(c) for c in contents)))


async def create_todo(api: httpx.AsyncClient, content: str | None = None, *, finished: bool = False) -> dict[str, Any]:
    """Create a todo through the API (``api`` carries the owner's token); returns its body."""
    resp = await api.post("/todos", json={"content": content or f"todo {secrets.token_hex(3)}"})
    assert resp.status_code == 201, resp.text
    todo: dict[str, Any] = resp.json()
    if finished:
        resp = await api.put(f"/todos/{todo['id']}/finish")
        assert resp.status_code == 200, resp.text
        todo = resp.json()
    return todo
