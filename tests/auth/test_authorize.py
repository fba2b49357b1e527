"""The authorization endpoint: login form, PKCE, exact redirect_uri, CSRF, single-use codes."""

from __future__ import annotations

import html as html_lib
import re
import secrets
from typing import Any
from urllib.parse import quote

import pytest

from tests.auth.conftest import AuthService
from tests.auth.flows import PASSWORD, WEB_REDIRECT, AuthFlows, authorization, hidden_fields, query_of

DOCS_CLIENT = "quartet-docs"


@pytest.fixture(scope="module")
def auth_service(auth_in_process: AuthService) -> AuthService:
    return auth_in_process


async def test_code_flow_with_pkce_issues_tokens_and_returns_state(flows: AuthFlows, user: dict[str, Any]) -> None:
    auth = authorization("profile todos:read todos:write")
    form = await flows.login_form(auth)
    assert form.status_code == 200
    assert form.headers["content-type"].startswith("text/html")
    assert "<script" not in form.text.lower()  # a plain form: works without JavaScript
    assert 'name="email"' in form.text and 'name="password"' in form.text
    assert form.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in form.headers["content-security-policy"]
    assert form.headers["cache-control"] == "no-store"
    assert "quartet_csrf" in form.headers["set-cookie"] and "SameSite=Strict" in form.headers["set-cookie"]

    resp = await flows.submit_login(form.text, user["email"], PASSWORD)
    assert resp.status_code == 302
    redirect = query_of(resp.headers["location"])
    assert resp.headers["location"].startswith(WEB_REDIRECT + "?")
    assert redirect["state"] == auth.params["state"]

    tokens = await flows.exchange(redirect["code"], auth.verifier)
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 900
    assert body["scope"] == "profile todos:read todos:write"
    assert body["refresh_token"]
    assert tokens.headers["cache-control"] == "no-store"

    me = await flows.http.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == user["email"]


async def test_email_is_matched_without_regard_to_case(flows: AuthFlows, user: dict[str, Any]) -> None:
    redirect = await flows.authorize(authorization(), user["email"].upper())
    assert "code" in redirect


async def test_extra_redirect_uri_from_settings_is_accepted(flows: AuthFlows, user: dict[str, Any]) -> None:
    auth = authorization(redirect_uri="http://127.0.0.1:5173/callback")
    redirect = await flows.authorize(auth, user["email"])
    resp = await flows.exchange(redirect["code"], auth.verifier, redirect_uri="http://127.0.0.1:5173/callback")
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        WEB_REDIRECT + "/",  # not a prefix match
        WEB_REDIRECT + "?next=https://evil.example",
        "http://localhost:8080/app/callback#x",
        "HTTP://LOCALHOST:8080/app/callback",
        None,  # no redirect_uri at all: required, there is no default
    ],
)
async def test_redirect_uri_mismatch_never_redirects(flows: AuthFlows, redirect_uri: str | None) -> None:
    auth = authorization(redirect_uri=redirect_uri)
    resp = await flows.login_form(auth)
    assert resp.status_code == 400
    assert "location" not in resp.headers
    assert "refused" in resp.text
    # The POST path validates the same way, even with credentials.
    posted = await flows.http.post("/auth/authorize", data=auth.params | {"email": "x@example.com", "password": "x"})
    assert posted.status_code == 400 and "location" not in posted.headers


@pytest.mark.parametrize("origin", ["http://localhost:8080", "http://127.0.0.1:8080"])
async def test_the_docs_client_signs_in_with_pkce_on_either_loopback_name_without_a_refresh_token(
    flows: AuthFlows, user: dict[str, Any], origin: str
) -> None:
    redirect_uri = f"{origin}/docs/oauth2-redirect"
    auth = authorization(
        "profile todos:read todos:write reports:read", client_id=DOCS_CLIENT, redirect_uri=redirect_uri
    )
    assert "Quartet API docs" in (await flows.login_form(auth)).text
    redirect = await flows.authorize(auth, user["email"])
    resp = await flows.exchange(redirect["code"], auth.verifier, client_id=DOCS_CLIENT, redirect_uri=redirect_uri)
    assert resp.status_code == 200, resp.text
    assert resp.json()["scope"] == "profile todos:read todos:write reports:read"
    assert "refresh_token" not in resp.json()  # Authorize again after 15 minutes


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://localhost:8080/app/callback",
        "http://localhost:8080/docs/oauth2-redirect.html",
        "http://localhost:8081/docs/oauth2-redirect",
    ],
)
async def test_the_docs_client_accepts_only_its_own_redirect_uris(flows: AuthFlows, redirect_uri: str) -> None:
    resp = await flows.login_form(authorization(client_id=DOCS_CLIENT, redirect_uri=redirect_uri))
    assert resp.status_code == 400 and "location" not in resp.headers


async def test_unknown_client_never_redirects(flows: AuthFlows) -> None:
    resp = await flows.login_form(authorization(client_id="no-such-client"))
    assert resp.status_code == 400 and "location" not in resp.headers


async def test_confidential_client_cannot_use_the_login_form(flows: AuthFlows) -> None:
    resp = await flows.login_form(authorization(client_id="reports-worker"))
    assert resp.status_code == 400 and "location" not in resp.headers


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"code_challenge": None, "code_challenge_method": None}, "PKCE is required"),
        ({"code_challenge_method": None}, "S256"),
        ({"code_challenge_method": "plain"}, "S256"),
        ({"code_challenge": "too-short"}, "code_challenge"),
    ],
)
async def test_missing_or_plain_pkce_is_refused_at_authorize(
    flows: AuthFlows, overrides: dict[str, str | None], why: str
) -> None:
    auth = authorization(**overrides)
    resp = await flows.login_form(auth)
    # The client and redirect_uri are valid, so the error goes back to the client (RFC 6749 §4.1.2.1).
    assert resp.status_code == 302
    error = query_of(resp.headers["location"])
    assert resp.headers["location"].startswith(WEB_REDIRECT + "?")
    assert error["error"] == "invalid_request" and why in error["error_description"]
    assert error["state"] == auth.params["state"]
    assert "code" not in error


@pytest.mark.parametrize("verifier", [None, "wrong-" + "v" * 50, ""])
async def test_missing_or_wrong_code_verifier_is_refused(
    flows: AuthFlows, user: dict[str, Any], verifier: str | None
) -> None:
    auth = authorization()
    redirect = await flows.authorize(auth, user["email"])
    resp = await flows.exchange(redirect["code"], verifier)
    assert resp.status_code == 400
    assert resp.json()["error"] in {"invalid_request", "invalid_grant"}
    # The right verifier still works: a failed attempt does not burn the code.
    assert (await flows.exchange(redirect["code"], auth.verifier)).status_code == 200


async def test_token_request_with_other_redirect_uri_is_refused(flows: AuthFlows, user: dict[str, Any]) -> None:
    auth = authorization()
    redirect = await flows.authorize(auth, user["email"])
    resp = await flows.exchange(redirect["code"], auth.verifier, redirect_uri="http://127.0.0.1:5173/callback")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


async def test_code_used_twice_fails_and_revokes_its_tokens(flows: AuthFlows, user: dict[str, Any]) -> None:
    auth = authorization()
    redirect = await flows.authorize(auth, user["email"])
    first = await flows.exchange(redirect["code"], auth.verifier)
    assert first.status_code == 200
    tokens = first.json()

    again = await flows.exchange(redirect["code"], auth.verifier)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"

    # What the first exchange issued is revoked: the refresh token and (at introspection) the access token.
    assert (await flows.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await flows.introspect(tokens["access_token"])).json() == {"active": False}


async def test_code_of_one_client_cannot_be_redeemed_by_another(flows: AuthFlows, user: dict[str, Any]) -> None:
    auth = authorization()
    redirect = await flows.authorize(auth, user["email"])
    resp = await flows.http.post(
        "/auth/token",
        data={"grant_type": "authorization_code", "code": redirect["code"], "redirect_uri": WEB_REDIRECT},
        auth=("reports-worker", "test-worker-secret"),
    )
    assert resp.status_code == 400 and resp.json()["error"] in {"unauthorized_client", "invalid_grant"}


async def test_expired_code_is_refused(auth_service: AuthService, flows: AuthFlows, user: dict[str, Any]) -> None:
    auth = authorization()
    redirect = await flows.authorize(auth, user["email"])
    await auth_service.fetch("UPDATE authorization_codes SET expires_at = now() - interval '1 second'")
    resp = await flows.exchange(redirect["code"], auth.verifier)
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


async def test_codes_live_at_most_sixty_seconds(
    auth_service: AuthService, flows: AuthFlows, user: dict[str, Any]
) -> None:
    await flows.authorize(authorization(), user["email"])
    rows = await auth_service.fetch(
        "SELECT max(extract(epoch FROM expires_at - auth_time)) AS ttl FROM authorization_codes"
    )
    assert 0 < rows[0]["ttl"] <= 60


async def test_login_without_csrf_token_is_refused(flows: AuthFlows, user: dict[str, Any]) -> None:
    auth = authorization()
    form = await flows.login_form(auth)
    fields = hidden_fields(form.text) | {"email": user["email"], "password": PASSWORD}
    del fields["csrf_token"]
    resp = await flows.http.post("/auth/authorize", data=fields)
    assert resp.status_code == 400 and "location" not in resp.headers
    assert "expired" in resp.text


async def test_login_from_another_site_without_the_cookie_is_refused(
    auth_service: AuthService, flows: AuthFlows, user: dict[str, Any]
) -> None:
    # A cross-site POST carries no SameSite=Strict cookie, even with a token it somehow read.
    form = await flows.login_form(authorization())
    fields = hidden_fields(form.text) | {"email": user["email"], "password": PASSWORD}
    async with auth_service.flows() as stranger:  # a client of its own: no cookie
        resp = await stranger.http.post("/auth/authorize", data=fields)
    assert resp.status_code == 400 and "location" not in resp.headers


async def test_wrong_password_and_unknown_email_get_the_same_answer(flows: AuthFlows, user: dict[str, Any]) -> None:
    form = await flows.login_form(authorization())
    wrong_password = await flows.submit_login(form.text, user["email"], "not the password")
    unknown_email = await flows.submit_login(form.text, "nobody-here@example.com", PASSWORD)
    assert wrong_password.status_code == unknown_email.status_code == 400
    # The form keeps what was typed as the email (issue 25), so compare with it taken out.
    assert wrong_password.text.replace(user["email"], "EMAIL") == unknown_email.text.replace(
        "nobody-here@example.com", "EMAIL"
    )
    assert "Invalid email or password." in wrong_password.text
    assert "location" not in wrong_password.headers


async def test_a_longer_password_than_allowed_never_matches_by_its_prefix(flows: AuthFlows) -> None:
    user = await flows.register(password="p" * 1024)
    form = await flows.login_form(authorization())
    resp = await flows.submit_login(form.text, user["email"], "p" * 1024 + "extra")
    assert resp.status_code == 400 and "location" not in resp.headers


async def test_a_wrong_password_keeps_the_email_and_never_the_password(flows: AuthFlows, user: dict[str, Any]) -> None:
    form = await flows.login_form(authorization())
    resp = await flows.submit_login(form.text, user["email"], "not the password")
    assert resp.status_code == 400
    assert f'value="{user["email"]}"' in resp.text
    assert "not the password" not in resp.text
    assert 'href="/auth/authorize?' in resp.text and "prompt=create" in resp.text  # "Create an account"


async def test_registering_on_the_form_signs_you_in_with_the_same_request(flows: AuthFlows) -> None:
    """prompt=create shows the registration form of this authorization request; its POST creates
    the account and redirects with a code, exactly as a sign-in would."""
    auth = authorization("profile todos:read")
    form = await flows.http.get("/auth/authorize", params={**auth.params, "prompt": "create"})
    assert form.status_code == 200 and "Create an account" in form.text
    assert "<script" not in form.text.lower()
    email = f"form-{secrets.token_hex(5)}@example.com"
    fields = hidden_fields(form.text) | {"email": email, "password": PASSWORD, "name": "Form User"}
    resp = await flows.http.post("/auth/authorize", data=fields)
    assert resp.status_code == 302, resp.text
    query = query_of(resp.headers["location"])
    assert resp.headers["location"].startswith(WEB_REDIRECT + "?") and query["state"] == auth.params["state"]
    tokens = await flows.exchange(query["code"], auth.verifier)
    assert tokens.status_code == 200, tokens.text
    me = await flows.http.get("/auth/me", headers={"Authorization": f"Bearer {tokens.json()['access_token']}"})
    assert me.json()["email"] == email and me.json()["name"] == "Form User"

    # The same email again: 409, said in words, with a way to sign in instead (email carried over).
    again = await flows.http.get("/auth/authorize", params={**auth.params, "prompt": "create"})
    resp = await flows.http.post(
        "/auth/authorize", data=hidden_fields(again.text) | {"email": email, "password": PASSWORD}
    )
    assert resp.status_code == 409
    assert "An account with this email already exists." in resp.text and "Sign in instead" in resp.text
    assert f"login_hint={quote(email)}" in resp.text
    hinted = await flows.http.get("/auth/authorize", params={**auth.params, "login_hint": email})
    assert f'value="{email}"' in hinted.text and "<h1>Sign in</h1>" in hinted.text


async def test_registration_form_errors_are_per_field_in_words(flows: AuthFlows) -> None:
    auth = authorization()
    form = await flows.http.get("/auth/authorize", params={**auth.params, "prompt": "create"})
    fields = hidden_fields(form.text) | {"email": "not-an-email", "password": "tiny7", "name": "ok"}
    resp = await flows.http.post("/auth/authorize", data=fields)
    assert resp.status_code == 422 and "location" not in resp.headers
    assert 'id="email-error">email is not an email address' in resp.text
    assert 'id="password-error">password must be at least 8 characters long' in resp.text
    assert "pattern" not in resp.text and "tiny7" not in resp.text
    assert 'value="not-an-email"' in resp.text  # kept, so it can be corrected


async def test_the_form_offers_a_way_back_that_tells_the_app(flows: AuthFlows) -> None:
    auth = authorization()
    form = await flows.login_form(auth)
    back = html_lib.unescape(re.search(r'<a href="([^"]+)">Back to ', form.text)[1])  # type: ignore[index]
    assert back.startswith(WEB_REDIRECT + "?")
    assert query_of(back) == {
        "error": "access_denied",
        "error_description": "Sign-in was cancelled.",
        "state": auth.params["state"],
    }
