"""The one bearer parser, the RFC 6750 challenges and the token problems (kit and gateway alike).

In-process: a real :class:`TokenVerifier` over a key made here (no auth process needed).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import aiohttp
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from services.kit.problem import Problem
from services.kit.security import (
    InvalidToken,
    TokenVerifier,
    bearer_challenge,
    bearer_token,
    insufficient_scope,
    verified_claims,
)
from services.kit.security.verifier import MAX_TOKEN_BYTES

ISSUER = "http://issuer.test"
KEY = ECKey.generate_key("P-256", parameters={"kid": "k1", "alg": "ES256"})


def token(**overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISSUER, "aud": "quartet", "sub": str(uuid.uuid4()), "client_id": "quartet-web"}
    claims |= {"scope": "todos:read", "jti": str(uuid.uuid4()), "iat": now, "exp": now + 300} | overrides
    return jwt.encode({"alg": "ES256", "kid": "k1", "typ": "at+jwt"}, claims, KEY, algorithms=["ES256"])


def verifier(*, reachable: bool = True) -> TokenVerifier:
    async def fetch_jwks() -> dict[str, Any]:
        if not reachable:
            raise aiohttp.ClientConnectionError("issuer down")
        return {"keys": [KEY.as_dict(private=False)]}

    return TokenVerifier(ISSUER, "quartet", "unused", fetch_jwks=fetch_jwks)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc.def-_~+/==", "abc.def-_~+/=="),
        ("bearer  abc ", "abc"),
        ("BEARER abc", "abc"),
        ("Bearer " + "a" * MAX_TOKEN_BYTES, "a" * MAX_TOKEN_BYTES),
        (None, None),
        ("", None),
        ("Bearer", None),
        ("Bearer   ", None),
        ("Basic dXNlcjpwYXNz", None),
        ("Bearerabc", None),
        ("Bearer\tabc", None),  # the scheme is separated by spaces (RFC 7235 1*SP)
    ],
)
def test_bearer_token_parses_one_token(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("Bearer one two", "exactly one bearer token"),
        ("Bearer one\ttwo", "exactly one bearer token"),
        ("Bearer " + "a" * (MAX_TOKEN_BYTES + 1), "too large"),
        ('Bearer a"b', "characters"),
        ("Bearer a,b", "characters"),
        ("Bearer a=b", "characters"),  # padding only at the end
        ("Bearer é", "characters"),
    ],
)
def test_bearer_credentials_that_cannot_be_a_token_are_an_invalid_token(header: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        bearer_token(header)


def test_bearer_challenge_names_only_what_is_given() -> None:
    assert bearer_challenge() == 'Bearer realm="quartet"'
    assert bearer_challenge("invalid_token", description="the token has expired") == (
        'Bearer realm="quartet", error="invalid_token", error_description="the token has expired"'
    )
    assert bearer_challenge("insufficient_scope", scope="todos:read todos:write") == (
        'Bearer realm="quartet", error="insufficient_scope", scope="todos:read todos:write"'
    )


def test_bearer_challenge_keeps_quoted_strings_intact() -> None:
    challenge = bearer_challenge("invalid_token", description='a "quoted"\\ word\r\n, é')
    assert challenge == """Bearer realm="quartet", error="invalid_token", error_description="a 'quoted' word, \""""


def test_insufficient_scope_is_403_with_its_challenge() -> None:
    named = insufficient_scope("todos:read:any")
    assert named.status == 403 and named.detail == "insufficient_scope: this needs the scope todos:read:any"
    assert named.headers["WWW-Authenticate"].endswith('error="insufficient_scope", scope="todos:read:any"')
    family = insufficient_scope(detail="the token carries no todos:* scope")
    assert family.detail == "the token carries no todos:* scope"
    assert family.headers["WWW-Authenticate"] == 'Bearer realm="quartet", error="insufficient_scope"'


async def test_verified_claims_answers_each_token_problem() -> None:
    good = token(scope="todos:read todos:write")
    claims = await verified_claims(verifier(), f"Bearer {good}")
    assert claims.scopes == {"todos:read", "todos:write"} and claims.user_id is not None

    with pytest.raises(Problem) as missing:
        await verified_claims(verifier(), "Basic dXNlcjpwYXNz")
    assert missing.value.status == 401
    assert missing.value.headers["WWW-Authenticate"] == 'Bearer realm="quartet"'

    expired = token(iat=int(time.time()) - 2000, exp=int(time.time()) - 1000)
    for header in (f"Bearer {expired}", f"Bearer {good} {good}"):
        with pytest.raises(Problem) as invalid:
            await verified_claims(verifier(), header)
        assert invalid.value.status == 401
        assert 'error="invalid_token", error_description=' in invalid.value.headers["WWW-Authenticate"]

    with pytest.raises(Problem) as unavailable:
        await verified_claims(verifier(reachable=False), f"Bearer {good}")
    assert unavailable.value.status == 503 and unavailable.value.headers["Retry-After"] == "1"
