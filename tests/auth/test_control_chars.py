"""NUL and other control characters are refused at validation, never passed on to PostgreSQL."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.auth.flows import PASSWORD, WEB_CLIENT, AuthFlows, authorization


@pytest.mark.parametrize(
    "body",
    [
        {"email": "nul\u0000@example.com", "password": PASSWORD},
        {"email": "a@example.com\u0000", "password": PASSWORD},
        {"email": "bell\u0007@example.com", "password": PASSWORD},
        {"email": "ok-{}@example.com", "password": PASSWORD, "name": "Ada\u0000"},
        {"email": "ok-{}@example.com", "password": PASSWORD, "name": "Ada\u001b[31m"},
        {"email": "ok-{}@example.com", "password": "pass\u0000word"},
    ],
)
async def test_register_refuses_control_characters_with_422(flows: AuthFlows, body: dict[str, str]) -> None:
    body = {k: v.replace("{}", secrets.token_hex(4)) for k, v in body.items()}
    resp = await flows.http.post("/auth/register", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")


async def test_a_name_may_still_hold_ordinary_unicode(flows: AuthFlows) -> None:
    email = f"uni-{secrets.token_hex(4)}@example.com"
    resp = await flows.http.post("/auth/register", json={"email": email, "password": PASSWORD, "name": "Zoë 山田"})
    assert resp.status_code == 201, resp.text


async def test_the_sign_in_form_answers_a_nul_email_like_a_wrong_one(flows: AuthFlows, user: dict[str, Any]) -> None:
    form = await flows.login_form(authorization())
    resp = await flows.submit_login(form.text, user["email"] + "\u0000", PASSWORD)
    assert resp.status_code == 400, resp.text
    assert "Invalid email or password." in resp.text
    resp = await flows.submit_login(form.text, "\u0000", PASSWORD)
    assert resp.status_code == 400 and "Invalid email or password." in resp.text


@pytest.mark.parametrize("client_id", ["q\u0000", WEB_CLIENT + "\u0000", "reports-worker\u0001"])
async def test_token_endpoint_refuses_a_nul_client_id_as_an_oauth_error(flows: AuthFlows, client_id: str) -> None:
    public = await flows.http.post(
        "/auth/token",
        data={"grant_type": "authorization_code", "code": "x", "client_id": client_id, "code_verifier": "v" * 43},
    )
    assert public.status_code in (400, 401), public.text
    assert public.json()["error"] in ("invalid_request", "invalid_client")
    basic = await flows.http.post("/auth/token", data={"grant_type": "client_credentials"}, auth=(client_id, "secret"))
    assert basic.status_code in (400, 401), basic.text
    assert basic.json()["error"] in ("invalid_request", "invalid_client")


async def test_token_endpoint_refuses_nul_in_any_parameter(flows: AuthFlows) -> None:
    resp = await flows.http.post(
        "/auth/token", data={"grant_type": "refresh_token", "refresh_token": "a\u0000b", "client_id": WEB_CLIENT}
    )
    assert resp.status_code == 400 and resp.json()["error"] in ("invalid_request", "invalid_grant"), resp.text
    for path in ("/auth/revoke", "/auth/introspect"):
        resp = await flows.http.post(path, data={"token": "t\u0000", "client_id": "q\u0000"})
        assert resp.status_code in (400, 401), resp.text
        assert resp.json()["error"] in ("invalid_request", "invalid_client")


async def test_authorize_refuses_a_nul_client_id_without_redirecting(flows: AuthFlows) -> None:
    resp = await flows.http.get("/auth/authorize?client_id=q%00&response_type=code")
    assert resp.status_code == 400, resp.text
    assert "location" not in resp.headers
    resp = await flows.login_form(authorization(client_id=WEB_CLIENT + "\u0000"))
    assert resp.status_code == 400 and "location" not in resp.headers


async def test_authorize_refuses_nul_in_other_parameters(flows: AuthFlows, user: dict[str, Any]) -> None:
    for field in ("code_challenge", "state", "scope"):
        auth = authorization()
        auth.params[field] = auth.params[field][:10] + "\u0000"
        form = await flows.login_form(auth)
        assert form.status_code in (302, 400), (field, form.text)
        if form.status_code == 302:  # a verified redirect_uri: the error goes back to the client
            assert "error=invalid_request" in form.headers["location"]
        else:
            assert "<h1>Sign-in request refused</h1>" in form.text
