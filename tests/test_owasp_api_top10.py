"""OWASP API Security Top 10 (2023): at least one real attack per item, against the running suite.

Every request goes through a real gateway in front of the test session's auth, todos,
reports (+ worker) and a ping instance, the way an outside client or attacker reaches
the suite. docs/security.md maps each item to its controls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.auth.flows import PASSWORD, WEB_CLIENT, authorization, query_of
from tests.gateway.checks import raw_request
from tests.suite import USER_SCOPES, Suite, User, launch_gateway
from tests.support import ServiceProcess, assert_problem


@pytest.fixture(scope="module")
def edge(suite: Suite, ping_service: ServiceProcess, log_dir: Path) -> Iterator[ServiceProcess]:
    with launch_gateway(log_dir, suite.gateway_env(ping_service.url)) as proc:
        yield proc


@pytest.fixture
async def api(edge: ServiceProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=edge.url, timeout=30) as http:
        yield http


def bearer(user: User, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or user.token}"}


async def create_todo(api: httpx.AsyncClient, user: User, content: str) -> dict[str, Any]:
    resp = await api.post("/todos", json={"content": content}, headers=bearer(user))
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


async def finished_report(api: httpx.AsyncClient, user: User) -> dict[str, Any]:
    resp = await api.post("/reports", json={"format": "json"}, headers=bearer(user))
    assert resp.status_code == 202, resp.text
    location = resp.headers["location"]
    for _ in range(300):
        report: dict[str, Any] = (await api.get(location, headers=bearer(user))).json()
        if report["status"] in {"done", "failed"}:
            return report
        await asyncio.sleep(0.1)
    raise AssertionError(f"report not finished: {report}")


# API1:2023 Broken Object Level Authorization
async def test_api1_another_users_objects_are_not_found(api: httpx.AsyncClient, alice: User, bob: User) -> None:
    todo = await create_todo(api, alice, "alice's private todo")
    report = await finished_report(api, alice)
    assert report["status"] == "done"
    for method, path in [
        ("GET", f"/todos/{todo['id']}"),
        ("PATCH", f"/todos/{todo['id']}"),
        ("PUT", f"/todos/{todo['id']}/finish"),
        ("DELETE", f"/todos/{todo['id']}"),
        ("GET", f"/reports/{report['id']}"),
        ("GET", f"/reports/{report['id']}/file"),
    ]:
        body = {"content": "pwned"} if method == "PATCH" else None
        assert_problem(await api.request(method, path, json=body, headers=bearer(bob)), 404)
    # Asking for alice's list by her id needs a service scope, not a user token.
    assert_problem(await api.get("/todos", params={"owner": alice.id}, headers=bearer(bob)), 403)
    still = await api.get(f"/todos/{todo['id']}", headers=bearer(alice))
    assert still.status_code == 200 and still.json() == todo


# API2:2023 Broken Authentication
async def test_api2_forged_unsigned_and_expired_tokens_are_refused(
    api: httpx.AsyncClient, suite: Suite, alice: User
) -> None:
    kid = jwt.decode(
        alice.token, RSAKey.import_key((await api.get("/.well-known/jwks.json")).json()["keys"][0])
    ).header["kid"]
    attacker = RSAKey.generate_key(2048)
    now = int(time.time())
    claims = {
        "iss": suite.auth_url,
        "aud": "quartet",
        "sub": alice.id,
        "scope": USER_SCOPES,
        "iat": now,
        "exp": now + 600,
        "jti": "forged",
        "client_id": WEB_CLIENT,
    }
    forged = jwt.encode({"alg": "RS256", "kid": kid, "typ": "at+jwt"}, claims, attacker)
    unsigned = alice.token.rsplit(".", 1)[0] + "."
    for token in (forged, unsigned, "not-a-jwt", alice.token[:-4] + "AAAA"):
        resp = await api.get("/todos", headers=bearer(alice, token))
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer")
    assert_problem(await api.get("/todos"), 401)
    # A refresh token used twice revokes its whole family (RFC 9700 4.14.2).
    async with suite.flows() as flows:
        tokens = await flows.sign_in(alice.email, "profile todos:read")
        first = await flows.refresh(tokens["refresh_token"])
        assert first.status_code == 200
        replay = await flows.refresh(tokens["refresh_token"])
        assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
        assert (await flows.refresh(first.json()["refresh_token"])).status_code == 400


# API3:2023 Broken Object Property Level Authorization
async def test_api3_clients_cannot_set_or_see_properties_they_do_not_own(
    api: httpx.AsyncClient, alice: User, bob: User
) -> None:
    sneaky = {
        "content": "mass assignment",
        "owner_id": bob.id,
        "id": "00000000-0000-0000-0000-000000000001",
        "created_at": "2000-01-01T00:00:00Z",
    }
    # Unknown properties are refused outright, never silently applied or ignored.
    assert_problem(await api.post("/todos", json=sneaky, headers=bearer(alice)), 422)
    todo = await create_todo(api, alice, "properties")
    assert set(todo) == {"id", "content", "is_finished", "created_at", "updated_at", "finished_at"}
    resp = await api.patch(f"/todos/{todo['id']}", json={"created_at": "2000-01-01T00:00:00Z"}, headers=bearer(alice))
    assert_problem(resp, 422)
    assert (await api.get(f"/todos/{todo['id']}", headers=bearer(alice))).json()["created_at"] == todo["created_at"]
    me = (await api.get("/auth/me", headers=bearer(alice))).json()
    assert not {"password", "password_hash", "hash"} & set(me)


# API4:2023 Unrestricted Resource Consumption
async def test_api4_every_input_is_bounded(api: httpx.AsyncClient, alice: User) -> None:
    assert_problem(await api.post("/todos", json={"content": "x" * 1001}, headers=bearer(alice)), 422)
    assert_problem(await api.get("/todos", params={"limit": 100_000}, headers=bearer(alice)), 422)
    huge = b'{"content": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    resp = await api.post(
        "/todos", content=huge, headers={**bearer(alice), "Content-Type": "application/json"}, timeout=30
    )
    assert_problem(resp, 413)
    assert_problem(await api.get("/ping/delay", params={"ms": 10**9}), 422)


# API5:2023 Broken Function Level Authorization
async def test_api5_a_user_cannot_reach_service_or_admin_functions(
    api: httpx.AsyncClient, suite: Suite, alice: User
) -> None:
    # A user who asks the SPA client for a service scope does not get it.
    async with suite.flows() as flows:
        auth = authorization("todos:read todos:read:any")
        form = await flows.login_form(auth)
        if form.status_code == 200:
            done = await flows.submit_login(form.text, alice.email, PASSWORD)
            location = done.headers.get("location", "")
            if "code=" in location:
                tokens = (await flows.exchange(query_of(location)["code"], auth.verifier)).json()
                assert "todos:read:any" not in tokens.get("scope", "").split()
                token = tokens["access_token"]
                assert_problem(await api.get("/todos", params={"owner": alice.id}, headers=bearer(alice, token)), 403)
            else:
                assert "error=invalid_scope" in location
        else:
            assert form.status_code == 400 or "error=invalid_scope" in form.headers.get("location", "")
    # Introspection is for confidential clients only.
    resp = await api.post("/auth/introspect", data={"token": alice.token})
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    # A read-only token cannot write.
    read_only = await suite.login(alice, scope="todos:read")
    assert_problem(await api.post("/todos", json={"content": "no"}, headers=bearer(alice, read_only)), 403)


# API6:2023 Unrestricted Access to Sensitive Business Flows
async def test_api6_password_guessing_is_cut_off(api: httpx.AsyncClient, suite: Suite, new_user: User) -> None:
    refused = 0
    async with suite.flows() as flows:
        for _ in range(40):
            form = await flows.login_form(authorization())
            if form.status_code == 429:
                refused += 1
                continue
            resp = await flows.submit_login(form.text, new_user.email, "wrong password")
            assert resp.status_code in {400, 429}, resp.status_code
            if resp.status_code == 429:
                refused += 1
                assert int(resp.headers["retry-after"]) >= 1
    assert refused > 0, "40 wrong passwords in a row from one address were all let through"


# API7:2023 Server Side Request Forgery
async def test_api7_no_request_is_sent_where_the_client_says(api: httpx.AsyncClient, edge: ServiceProcess) -> None:
    auth = authorization(redirect_uri="http://169.254.169.254/latest/meta-data")
    resp = await api.get("/auth/authorize", params=auth.params)
    assert resp.status_code == 400
    assert "location" not in resp.headers
    # An absolute-form request line or a forged Host never picks the upstream.
    status, _, body = await asyncio.to_thread(
        raw_request,
        edge.port,
        "GET http://169.254.169.254/latest/meta-data HTTP/1.1\nHost: 169.254.169.254\nConnection: close",
    )
    assert status in {400, 404}, body[:200]
    assert b"ami-id" not in body


# API8:2023 Security Misconfiguration
async def test_api8_headers_cors_and_errors_give_nothing_away(api: httpx.AsyncClient, alice: User) -> None:
    resp = await api.get("/todos", headers={**bearer(alice), "Origin": "https://evil.example"})
    assert resp.status_code == 200
    assert "access-control-allow-origin" not in resp.headers
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["x-frame-options"] == "DENY"
    app = await api.get("/app/")
    assert "default-src" in app.headers["content-security-policy"]
    preflight = await api.options(
        "/todos", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "DELETE"}
    )
    assert_problem(preflight, 403)
    broken = await api.post(
        "/todos", content=b'{"content": ', headers={**bearer(alice), "Content-Type": "application/json"}
    )
    body = assert_problem(broken, 400 if broken.status_code == 400 else 422)
    assert "Traceback" not in broken.text and 'File "' not in broken.text
    assert body["request_id"]
    assert "server" not in resp.headers or "/" not in resp.headers["server"]


# API9:2023 Improper Inventory Management
async def test_api9_what_is_served_is_what_is_documented(api: httpx.AsyncClient, alice: User) -> None:
    spec = (await api.get("/openapi.json")).json()
    paths = set(spec["paths"])
    assert {"/todos", "/todos/{todo_id}", "/reports", "/ping", "/auth/register", "/auth/me"} <= paths
    for path in ("/admin", "/debug", "/todos/v0", "/api/v1/todos", "/.env", "/.git/config", "/internal/metrics"):
        resp = await api.get(path, headers=bearer(alice))
        assert resp.status_code in {401, 404, 405}, f"{path}: {resp.status_code}"
        assert resp.headers["content-type"].startswith("application/problem+json")


# API10:2023 Unsafe Consumption of APIs
async def test_api10_an_upstream_answer_is_bounded_and_never_echoed_raw(api: httpx.AsyncClient, new_user: User) -> None:
    # The worker consumes the todos API; content with markup and control-looking text is
    # data in every report format, and a failed job's reason is a fixed phrase.
    await create_todo(api, new_user, '<script>alert(1)</script> =HYPERLINK("http://evil.example")')
    report = await finished_report(api, new_user)
    assert report["status"] == "done", report
    file = await api.get(f"/reports/{report['id']}/file", headers=bearer(new_user))
    assert file.status_code == 200
    assert file.headers["content-type"].startswith("application/json")
    assert file.headers.get("x-content-type-options") == "nosniff"
