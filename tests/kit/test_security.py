"""services.kit.security against a real auth process: the verifier, require_scope, the token source.

Negative tokens are forged with the service's real signing key (read from its
database), so each rejection is for the reason under test, not a bad signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import Key, RSAKey
from quart import Blueprint, g

from services.kit.app import create_service_app
from services.kit.config import ServiceSettings
from services.kit.security import (
    ClientCredentialsTokenSource,
    InvalidToken,
    TokenRequestFailed,
    TokenVerifier,
    install_auth,
    require_scope,
)
from tests.auth.conftest import AuthService, auth_db, auth_service  # noqa: F401 - fixtures
from tests.auth.flows import WORKER_CLIENT, WORKER_SECRET, AuthFlows
from tests.inprocess import asgi_client
from tests.support import assert_problem, free_port

AUDIENCE = "quartet"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Forger:
    """Signs arbitrary tokens with the auth service's real current key."""

    def __init__(self, issuer: str, kid: str, key: Key) -> None:
        self.issuer, self.kid, self.key = issuer, kid, key

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": AUDIENCE,
            "sub": str(uuid.uuid4()),
            "client_id": "quartet-web",
            "scope": "profile todos:read",
            "jti": str(uuid.uuid4()),
            "iat": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, header: Mapping[str, Any] | None = None, key: Key | None = None, **claims: Any) -> str:
        head = {"alg": "RS256", "kid": self.kid, "typ": "at+jwt", **(header or {})}
        head = {k: v for k, v in head.items() if v is not None}
        return jwt.encode(head, self.claims(**claims), key or self.key, algorithms=[head["alg"]], default_type=None)

    def raw(self, header: Mapping[str, Any], signature: bytes = b"", secret: bytes | None = None, **claims: Any) -> str:
        """A hand-made compact JWS (for algorithms joserfc rightly refuses to produce)."""
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(self.claims(**claims)).encode())}"
        if secret is not None:
            signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64(signature)}"


@pytest.fixture(scope="module")
async def forger(auth_service: AuthService) -> Forger:  # noqa: F811
    kid, key = await auth_service.signing_key()
    return Forger(auth_service.issuer, kid, key)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def verifier(auth_service: AuthService, session: aiohttp.ClientSession) -> TokenVerifier:  # noqa: F811
    return TokenVerifier(auth_service.issuer, AUDIENCE, f"{auth_service.url}/.well-known/jwks.json", session)


async def rejected(verifier: TokenVerifier, token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        await verifier.verify(token)


async def test_a_real_token_verifies_and_maps_its_claims(
    auth_service: AuthService,  # noqa: F811
    verifier: TokenVerifier,
) -> None:
    async with AuthFlows(auth_service.url) as flows:
        user = await flows.register()
        tokens = await flows.sign_in(user["email"], "profile todos:read")
    claims = await verifier.verify(tokens["access_token"])
    assert claims.sub == user["id"] and claims.user_id == uuid.UUID(user["id"])
    assert claims.client_id == "quartet-web"
    assert claims.scopes == frozenset({"profile", "todos:read"})
    assert claims.audience == (AUDIENCE,) and claims.issuer == auth_service.issuer
    assert claims.exp - claims.iat == 900


async def test_a_forged_but_correct_token_is_accepted(forger: Forger, verifier: TokenVerifier) -> None:
    # The control for every rejection below: same key, same shape, only one thing changed each time.
    assert (await verifier.verify(forger.token())).scopes == {"profile", "todos:read"}


async def test_alg_none_is_rejected(forger: Forger, verifier: TokenVerifier) -> None:
    for alg in ("none", "None", "NONE"):
        await rejected(verifier, forger.raw({"alg": alg, "typ": "at+jwt", "kid": forger.kid}), "algorithm")


async def test_hs256_signed_with_the_public_key_is_rejected(forger: Forger, verifier: TokenVerifier) -> None:
    public = RSAKey.import_key(forger.key.as_dict(private=False))
    for secret in (public.as_pem(private=False), json.dumps(public.as_dict()).encode()):
        header = {"alg": "HS256", "typ": "at+jwt", "kid": forger.kid}
        await rejected(verifier, forger.raw(header, secret=secret), "algorithm")


async def test_another_asymmetric_alg_than_the_keys_is_rejected(forger: Forger, verifier: TokenVerifier) -> None:
    header = {"alg": "ES256", "typ": "at+jwt", "kid": forger.kid}
    await rejected(verifier, forger.raw(header, signature=b"\x00" * 64), "does not match its key")


async def test_unknown_kid_is_rejected(forger: Forger, verifier: TokenVerifier) -> None:
    await rejected(verifier, forger.token({"kid": "no-such-key"}), "unknown key")
    await rejected(verifier, forger.token({"kid": None}), "key id")
    await rejected(verifier, forger.token({"kid": "x" * 300}), "key id")


async def test_injected_kid_and_embedded_keys_are_rejected(forger: Forger, verifier: TokenVerifier) -> None:
    attacker = RSAKey.generate_key(2048, {"kid": "attacker"})
    for kid in ("../../../../dev/null", "' OR '1'='1", "http://evil.example/jwks.json"):
        await rejected(verifier, forger.token({"kid": kid}, key=attacker), "unknown key")
    # The token brings its own key (jwk) or a URL to fetch one (jku): neither is ever used.
    embedded = {"kid": "attacker", "jwk": attacker.as_dict(private=False), "jku": "http://evil.example/jwks"}
    await rejected(verifier, forger.raw({"alg": "RS256", "typ": "at+jwt", **embedded}), "unknown key")
    # The real kid with the attacker's signature.
    await rejected(verifier, forger.token(key=attacker), "signature")


async def test_tampered_payload_is_rejected(forger: Forger, verifier: TokenVerifier) -> None:
    header, _, signature = forger.token().split(".")
    payload = b64(json.dumps(forger.claims(scope="todos:read:any")).encode())
    await rejected(verifier, f"{header}.{payload}.{signature}", "signature")


async def test_expired_token_is_rejected_beyond_the_leeway(forger: Forger, verifier: TokenVerifier) -> None:
    now = int(time.time())
    await rejected(verifier, forger.token(iat=now - 1000, exp=now - 60), "expired")
    assert await verifier.verify(forger.token(iat=now - 1000, exp=now - 10))  # within 30 s of clock skew


async def test_not_yet_valid_token_is_rejected(forger: Forger, verifier: TokenVerifier) -> None:
    now = int(time.time())
    await rejected(verifier, forger.token(nbf=now + 300), "not yet valid")
    await rejected(verifier, forger.token(iat=now + 300, exp=now + 900), "issued in the future")
    assert await verifier.verify(forger.token(nbf=now + 10))  # within the leeway


@pytest.mark.parametrize(
    ("header", "claims", "reason"),
    [
        ({}, {"iss": "http://evil.example"}, "iss"),
        ({}, {"iss": None}, "iss"),
        ({}, {"aud": "todos-elsewhere"}, "aud"),
        ({}, {"aud": ["other", "another"]}, "aud"),
        ({}, {"aud": None}, "aud"),
        ({"typ": "JWT"}, {}, "typ"),
        ({"typ": None}, {}, "typ"),
        ({"typ": "id_token+jwt"}, {}, "typ"),
        ({}, {"exp": None}, "exp"),
        ({}, {"sub": None}, "sub"),
        ({}, {"client_id": None}, "client_id"),
        ({}, {"jti": None}, "jti"),
        ({}, {"exp": float("nan")}, "exp|not valid"),
    ],
)
async def test_wrong_issuer_audience_type_or_missing_claims_are_rejected(
    forger: Forger, verifier: TokenVerifier, header: dict[str, Any], claims: dict[str, Any], reason: str
) -> None:
    head = {k: v for k, v in {"alg": "RS256", "kid": forger.kid, "typ": "at+jwt", **header}.items() if v is not None}
    signing_claims = forger.claims(**claims)
    token = jwt.encode(head, signing_claims, forger.key, algorithms=["RS256"], default_type=None)
    await rejected(verifier, token, reason)


async def test_audience_list_containing_ours_is_accepted(forger: Forger, verifier: TokenVerifier) -> None:
    assert (await verifier.verify(forger.token(aud=["other", AUDIENCE]))).audience == ("other", AUDIENCE)


async def test_malformed_tokens_are_rejected(verifier: TokenVerifier) -> None:
    for token in ["", "abc", "a.b", "a.b.c", "!!!.e30.x", "x" * 9000, "W10.e30.x"]:
        with pytest.raises(InvalidToken):
            await verifier.verify(token)


async def test_unknown_kids_refresh_the_jwks_at_most_once_per_interval(
    auth_service: AuthService,  # noqa: F811
    forger: Forger,
    session: aiohttp.ClientSession,
) -> None:
    fetches: list[float] = []
    documents: list[dict[str, Any]] = [{"keys": []}]  # the first fetch happens before the key exists

    async def fetch() -> dict[str, Any]:
        fetches.append(time.monotonic())
        if documents:
            return documents.pop()
        async with session.get(f"{auth_service.url}/.well-known/jwks.json") as resp:
            return dict(await resp.json())

    verifier = TokenVerifier(auth_service.issuer, AUDIENCE, "unused", fetch_jwks=fetch, min_refresh_seconds=0)
    await verifier.refresh()
    assert await verifier.verify(forger.token())  # unknown kid → refetched → found
    assert len(fetches) == 2

    slow = TokenVerifier(auth_service.issuer, AUDIENCE, "unused", fetch_jwks=fetch, min_refresh_seconds=60)
    fetches.clear()
    for _ in range(20):
        await rejected(slow, forger.token({"kid": uuid.uuid4().hex}), "unknown key")
    assert len(fetches) == 1  # a flood of random kids costs the issuer one request per interval
    assert await slow.verify(forger.token())


# --- require_scope in a kit app ----------------------------------------------------------------


def resource_app(issuer: str) -> Any:
    bp = Blueprint("resource", __name__)

    @bp.get("/private")
    @require_scope("todos:read")
    async def private() -> dict[str, Any]:
        return {"sub": g.claims.sub, "user_id": str(g.user_id) if g.user_id else None}

    @bp.get("/writers")
    @require_scope("todos:read", "todos:write")
    async def writers() -> dict[str, str]:
        return {"ok": "yes"}

    settings = ServiceSettings(service_name="resource", auth_url=issuer, database_url=None)
    app = create_service_app(settings, blueprints=[bp], title="resource")
    install_auth(app)
    return app


@pytest.fixture
async def resource(forger: Forger) -> AsyncIterator[httpx.AsyncClient]:
    app = resource_app(forger.issuer)
    async with app.test_app(), asgi_client(app) as client:
        yield client


async def test_require_scope_answers_401_without_a_valid_token(resource: httpx.AsyncClient, forger: Forger) -> None:
    missing = await resource.get("/private")
    assert_problem(missing, 401)
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="quartet"'

    basic = await resource.get("/private", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert_problem(basic, 401)

    expired = forger.token(iat=int(time.time()) - 2000, exp=int(time.time()) - 1000)
    bad = await resource.get("/private", headers={"Authorization": f"Bearer {expired}"})
    assert_problem(bad, 401)
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert bad.json()["detail"] == "the token has expired"


async def test_require_scope_answers_403_insufficient_scope(resource: httpx.AsyncClient, forger: Forger) -> None:
    token = forger.token(scope="todos:read")
    resp = await resource.get("/writers", headers={"Authorization": f"Bearer {token}"})
    assert_problem(resp, 403)
    assert 'error="insufficient_scope"' in resp.headers["WWW-Authenticate"]
    assert 'scope="todos:read todos:write"' in resp.headers["WWW-Authenticate"]
    assert "insufficient_scope" in resp.json()["detail"]


async def test_require_scope_lets_a_valid_token_through(resource: httpx.AsyncClient, forger: Forger) -> None:
    user_id = str(uuid.uuid4())
    resp = await resource.get("/private", headers={"Authorization": f"Bearer {forger.token(sub=user_id)}"})
    assert resp.status_code == 200
    assert resp.json() == {"sub": user_id, "user_id": user_id}
    service = forger.token(sub="reports-worker", client_id="reports-worker", scope="todos:read")
    resp = await resource.get("/private", headers={"Authorization": f"Bearer {service}"})
    assert resp.json() == {"sub": "reports-worker", "user_id": None}


# --- the client-credentials token source ---------------------------------------------------------


async def test_token_source_caches_until_shortly_before_expiry(
    auth_service: AuthService,  # noqa: F811
    session: aiohttp.ClientSession,
    verifier: TokenVerifier,
) -> None:
    url = f"{auth_service.url}/auth/token"
    source = ClientCredentialsTokenSource(url, WORKER_CLIENT, WORKER_SECRET, "todos:read:any", session)
    first = await source.token()
    assert await source.token() == first
    claims = await verifier.verify(first)
    assert claims.client_id == WORKER_CLIENT and claims.scopes == {"todos:read:any"}
    source.invalidate()
    assert await source.token() != first

    # A margin as long as the token's life: it is never reused.
    eager = ClientCredentialsTokenSource(
        url, WORKER_CLIENT, WORKER_SECRET, "todos:read:any", session, refresh_margin_seconds=900
    )
    assert await eager.token() != await eager.token()
    assert (await eager.authorization_header())["Authorization"].startswith("Bearer ")


async def test_token_source_reports_a_refusal(
    auth_service: AuthService,  # noqa: F811
    session: aiohttp.ClientSession,
) -> None:
    source = ClientCredentialsTokenSource(
        f"{auth_service.url}/auth/token", WORKER_CLIENT, "wrong", "todos:read:any", session
    )
    with pytest.raises(TokenRequestFailed, match="invalid_client"):
        await source.token()
    unreachable = ClientCredentialsTokenSource("http://127.0.0.1:9/token", "c", "s", "x", session)
    with pytest.raises(TokenRequestFailed, match="unreachable"):
        await unreachable.token()


async def test_unreachable_issuer_is_unavailable_not_invalid_and_recovers(
    auth_service: AuthService,  # noqa: F811
    forger: Forger,
    session: aiohttp.ClientSession,
) -> None:
    # A service that starts before auth must not answer 401 to good tokens: it cannot judge them yet (503).
    from services.kit.security.verifier import KeysUnavailable

    served = {"url": f"http://127.0.0.1:{free_port()}/.well-known/jwks.json"}  # nothing listens there

    async def fetch() -> Mapping[str, Any]:
        async with session.get(served["url"]) as resp:
            resp.raise_for_status()
            return dict(await resp.json())

    starting = TokenVerifier(auth_service.issuer, AUDIENCE, served["url"], fetch_jwks=fetch, min_refresh_seconds=10)
    with pytest.raises(KeysUnavailable):
        await starting.verify(forger.token())
    served["url"] = f"{auth_service.url}/.well-known/jwks.json"  # the issuer comes up
    time.sleep(1.1)  # failed fetches are retried after a second, not after min_refresh_seconds
    assert (await starting.verify(forger.token())).scopes == {"profile", "todos:read"}
