"""The token endpoint: refresh rotation and reuse, client credentials, scopes, refused grants."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.auth.conftest import AuthService
from tests.auth.flows import WEB_CLIENT, WORKER_CLIENT, WORKER_SECRET, AuthFlows, authorization


@pytest.fixture(scope="module")
def auth_service(auth_in_process: AuthService) -> AuthService:
    return auth_in_process


async def claims_of(auth_service: AuthService, flows: AuthFlows, token: str) -> dict[str, Any]:
    jwks = KeySet.import_key_set((await flows.http.get("/.well-known/jwks.json")).json())
    decoded = jwt.decode(token, jwks, algorithms=["RS256"])
    assert decoded.header["typ"] == "at+jwt"
    return dict(decoded.claims)


async def test_access_token_is_an_rfc9068_jwt(
    auth_service: AuthService, flows: AuthFlows, user: dict[str, Any]
) -> None:
    tokens = await flows.sign_in(user["email"], "profile todos:read")
    claims = await claims_of(auth_service, flows, tokens["access_token"])
    assert claims["iss"] == auth_service.issuer
    assert claims["aud"] == "quartet"
    assert claims["sub"] == user["id"]
    assert claims["client_id"] == WEB_CLIENT
    assert claims["scope"] == "profile todos:read"
    assert claims["exp"] - claims["iat"] == 900
    assert claims["jti"]


async def test_refresh_rotates_and_keeps_the_scope(flows: AuthFlows, user: dict[str, Any]) -> None:
    first = await flows.sign_in(user["email"], "profile todos:read")
    second = await flows.refresh(first["refresh_token"])
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["access_token"] != first["access_token"]
    assert body["scope"] == "profile todos:read"
    third = await flows.refresh(body["refresh_token"], scope="todos:read")  # narrowing is allowed
    assert third.status_code == 200 and third.json()["scope"] == "todos:read"


async def test_refresh_cannot_widen_the_scope(flows: AuthFlows, user: dict[str, Any]) -> None:
    tokens = await flows.sign_in(user["email"], "todos:read")
    resp = await flows.refresh(tokens["refresh_token"], scope="todos:read todos:write")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_scope"


async def test_refresh_token_reuse_revokes_the_whole_family(flows: AuthFlows, user: dict[str, Any]) -> None:
    first = await flows.sign_in(user["email"])
    second = (await flows.refresh(first["refresh_token"])).json()

    reused = await flows.refresh(first["refresh_token"])  # an attacker replays the old token
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

    # The legitimate holder's newer token is dead too, and so are the family's access tokens.
    assert (await flows.refresh(second["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await flows.introspect(second["access_token"])).json() == {"active": False}
    assert (await flows.introspect(first["access_token"])).json() == {"active": False}


async def test_concurrent_refreshes_with_one_token_issue_at_most_once(flows: AuthFlows, user: dict[str, Any]) -> None:
    tokens = await flows.sign_in(user["email"])
    results = await asyncio.gather(*(flows.refresh(tokens["refresh_token"]) for _ in range(5)))
    assert [r.status_code for r in results].count(200) <= 1


async def test_refresh_token_of_another_client_is_refused(flows: AuthFlows, user: dict[str, Any]) -> None:
    tokens = await flows.sign_in(user["email"])
    resp = await flows.http.post(
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        auth=(WORKER_CLIENT, "test-worker-secret"),
    )
    assert resp.status_code in {400, 401}
    assert resp.json()["error"] in {"unauthorized_client", "invalid_grant"}


async def test_client_credentials_issue_a_service_token(auth_service: AuthService, flows: AuthFlows) -> None:
    resp = await flows.client_credentials("todos:read:any")
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["scope"] == "todos:read:any" and "refresh_token" not in body
    claims = await claims_of(auth_service, flows, body["access_token"])
    assert claims["sub"] == WORKER_CLIENT and claims["client_id"] == WORKER_CLIENT
    # Without a scope parameter the client gets what it is allowed.
    assert (await flows.client_credentials()).json()["scope"] == "todos:read:any"
    # client_secret_post works too.
    post = await flows.http.post(
        "/auth/token",
        data={"grant_type": "client_credentials", "client_id": WORKER_CLIENT, "client_secret": "test-worker-secret"},
    )
    assert post.status_code == 200


@pytest.mark.parametrize("secret", ["wrong-secret", "", "test-worker-secret "])
async def test_wrong_client_secret_is_refused(flows: AuthFlows, secret: str) -> None:
    resp = await flows.client_credentials("todos:read:any", secret=secret)
    assert resp.status_code in {400, 401}
    assert resp.json()["error"] == "invalid_client"
    assert "access_token" not in resp.json()


async def test_client_secrets_are_stored_hashed(auth_service: AuthService) -> None:
    rows = await auth_service.fetch("SELECT secret_hash FROM oauth_clients WHERE client_id = $1", WORKER_CLIENT)
    assert rows[0]["secret_hash"].startswith("$argon2id$")
    assert "test-worker-secret" not in rows[0]["secret_hash"]


async def test_public_client_cannot_use_client_credentials(flows: AuthFlows) -> None:
    resp = await flows.http.post("/auth/token", data={"grant_type": "client_credentials", "client_id": WEB_CLIENT})
    assert resp.status_code in {400, 401}
    assert resp.json()["error"] in {"invalid_client", "unauthorized_client"}


async def test_password_grant_is_refused(flows: AuthFlows, user: dict[str, Any]) -> None:
    auths: list[tuple[str, str] | None] = [None, (WORKER_CLIENT, WORKER_SECRET)]
    for auth in auths:
        resp = await flows.http.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": user["email"],
                "password": "correct horse battery",
                "client_id": WEB_CLIENT,
            },
            auth=auth or httpx.USE_CLIENT_DEFAULT,
        )
        assert resp.status_code == 400
        assert resp.json()["error"] == "unsupported_grant_type"
        assert "access_token" not in resp.json()


async def test_implicit_grant_is_refused(flows: AuthFlows) -> None:
    resp = await flows.login_form(authorization(response_type="token"))
    assert resp.status_code in {302, 400}
    if resp.status_code == 302:
        assert "access_token" not in resp.headers["location"]
        assert "error=unsupported_response_type" in resp.headers["location"]


async def test_scope_the_client_may_not_have_is_never_issued(
    auth_service: AuthService, flows: AuthFlows, user: dict[str, Any]
) -> None:
    # The SPA asks for the service-only scope: it is cut from the code and the token.
    tokens = await flows.sign_in(user["email"], "todos:read todos:read:any")
    assert tokens["scope"] == "todos:read"
    assert (await claims_of(auth_service, flows, tokens["access_token"]))["scope"] == "todos:read"
    # Nothing but forbidden scopes: refused instead of an empty token.
    resp = await flows.login_form(authorization("todos:read:any"))
    assert resp.status_code == 302 and "error=invalid_scope" in resp.headers["location"]

    # The worker asks for user scopes: cut down to nothing it may not have.
    worker = await flows.client_credentials("todos:read:any profile todos:write")
    assert worker.status_code == 200 and worker.json()["scope"] == "todos:read:any"
    assert (await flows.client_credentials("profile")).json()["error"] == "invalid_scope"
    # Unknown scopes are an error, not silently granted.
    assert (await flows.client_credentials("admin")).json()["error"] == "invalid_scope"

    issued = await auth_service.fetch("SELECT client_id, scope FROM access_tokens")
    for row in issued:
        if row["client_id"] == WEB_CLIENT:
            assert "todos:read:any" not in row["scope"].split()
        else:
            assert set(row["scope"].split()) <= {"todos:read:any"}
