"""Revocation (RFC 7009), introspection (RFC 7662), metadata (RFC 8414) and the JWKS."""

from __future__ import annotations

from typing import Any

import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from tests.auth.conftest import AuthService
from tests.auth.flows import WEB_CLIENT, WORKER_CLIENT, AuthFlows


@pytest.fixture(scope="module")
def auth_service(auth_in_process: AuthService) -> AuthService:
    return auth_in_process


async def test_introspection_describes_an_active_access_token(
    auth_service: AuthService, flows: AuthFlows, user: dict[str, Any]
) -> None:
    tokens = await flows.sign_in(user["email"], "profile todos:read")
    resp = await flows.introspect(tokens["access_token"])
    assert resp.status_code == 200
    body = resp.json()
    assert body["active"] is True
    assert body["sub"] == user["id"] and body["client_id"] == WEB_CLIENT
    assert body["scope"] == "profile todos:read"
    assert body["iss"] == auth_service.issuer and body["aud"] == "quartet"
    assert body["exp"] > body["iat"]

    refresh = (await flows.introspect(tokens["refresh_token"])).json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"


async def test_introspection_of_junk_is_inactive(flows: AuthFlows) -> None:
    for token in ["junk", "a.b.c", "eyJhbGciOiJub25lIn0.e30."]:
        resp = await flows.introspect(token)
        assert resp.status_code == 200 and resp.json() == {"active": False}


async def test_introspection_is_for_confidential_clients_only(flows: AuthFlows, user: dict[str, Any]) -> None:
    tokens = await flows.sign_in(user["email"])
    public = await flows.http.post("/auth/introspect", data={"token": tokens["access_token"], "client_id": WEB_CLIENT})
    assert public.status_code in {400, 401} and public.json()["error"] == "invalid_client"
    anonymous = await flows.http.post("/auth/introspect", data={"token": tokens["access_token"]})
    assert anonymous.status_code in {400, 401} and "active" not in anonymous.json()
    wrong = await flows.introspect(tokens["access_token"], auth=(WORKER_CLIENT, "nope"))
    assert wrong.status_code == 401 and "active" not in wrong.json()


async def test_revoking_a_refresh_token_ends_the_grant(flows: AuthFlows, user: dict[str, Any]) -> None:
    tokens = await flows.sign_in(user["email"])
    resp = await flows.revoke(tokens["refresh_token"], hint="refresh_token")
    assert resp.status_code == 200
    assert (await flows.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await flows.introspect(tokens["access_token"])).json() == {"active": False}


async def test_revoking_an_access_token_leaves_the_refresh_token(flows: AuthFlows, user: dict[str, Any]) -> None:
    tokens = await flows.sign_in(user["email"])
    assert (await flows.revoke(tokens["access_token"])).status_code == 200
    assert (await flows.introspect(tokens["access_token"])).json() == {"active": False}
    assert (await flows.refresh(tokens["refresh_token"])).status_code == 200


async def test_revoking_an_unknown_token_is_still_200(flows: AuthFlows) -> None:
    assert (await flows.revoke("never-issued")).status_code == 200


async def test_service_can_revoke_its_own_token(flows: AuthFlows) -> None:
    token = (await flows.client_credentials()).json()["access_token"]
    resp = await flows.http.post("/auth/revoke", data={"token": token}, auth=(WORKER_CLIENT, "test-worker-secret"))
    assert resp.status_code == 200
    assert (await flows.introspect(token)).json() == {"active": False}


async def test_metadata_follows_rfc8414(auth_service: AuthService, flows: AuthFlows) -> None:
    resp = await flows.http.get("/.well-known/oauth-authorization-server")
    assert resp.status_code == 200
    body = resp.json()
    AuthorizationServerMetadata(body).validate()
    assert body["issuer"] == auth_service.issuer
    assert body["token_endpoint"] == f"{auth_service.issuer}/auth/token"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert "password" not in body["grant_types_supported"]
    assert "implicit" not in body["grant_types_supported"]


async def test_jwks_publishes_public_keys_only(flows: AuthFlows) -> None:
    keys = (await flows.http.get("/.well-known/jwks.json")).json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k["alg"] == "RS256" and k["kid"] for k in keys)
    assert all(private not in k for k in keys for private in ("d", "p", "q", "dp", "dq", "qi"))


async def test_openapi_documents_the_public_endpoints(flows: AuthFlows) -> None:
    paths = (await flows.http.get("/openapi.json")).json()["paths"]
    for path in ("/auth/register", "/auth/me", "/auth/token", "/auth/revoke", "/auth/introspect"):
        assert path in paths
    assert "/.well-known/jwks.json" in paths and "/.well-known/oauth-authorization-server" in paths
    token = paths["/auth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token["requestBody"]["content"]
