"""Token checks at the edge, against the real auth and todos processes of the test suite.

Reports lead to the echo upstream here: with a valid token it shows what crossed the wire.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.conftest import launch_gateway
from tests.gateway.test_proxy import echoed, logged
from tests.suite import Suite, User
from tests.support import ServiceProcess, assert_problem


@pytest.fixture(scope="module")
def edge_gateway(
    log_dir: Path, suite: Suite, echo_upstream: ServiceProcess, ping_service: ServiceProcess
) -> Iterator[ServiceProcess]:
    proc = launch_gateway(
        log_dir,
        {
            "AUTH_URL": suite.auth_url,
            "AUTH_URLS": suite.auth_url,
            "TODOS_URLS": suite.todos_url,
            "REPORTS_URLS": echo_upstream.url,
            "PING_URLS": ping_service.url,
        },
    )
    yield proc
    proc.stop()


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def bad_tokens(good: str) -> dict[str, str]:
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    other_sub = _b64({**claims, "sub": "00000000-0000-0000-0000-000000000001"})
    return {
        "garbage": "not-a-jwt",
        "tampered signature": f"{header}.{payload}.{signature[:-4]}AAAA",
        "tampered claims": f"{header}.{other_sub}.{signature}",
        "alg none": f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': 'x'})}.{payload}.",
    }


async def test_missing_or_bad_token_on_a_protected_route_never_reaches_the_service(
    edge_gateway: ServiceProcess, suite: Suite, alice: User
) -> None:
    todos = suite.processes["todos"]
    stamp = time.time_ns()
    rejected = []
    attempts: dict[str, dict[str, str]] = {"missing": {}, "basic": {"Authorization": "Basic YWxpY2U6cHc="}}
    attempts |= {name: {"Authorization": f"Bearer {token}"} for name, token in bad_tokens(alice.token).items()}
    for name, headers in attempts.items():
        rid = f"edge-bad-{stamp}-{name.replace(' ', '-')}"
        resp = httpx.get(f"{edge_gateway.url}/todos", headers={**headers, "X-Request-ID": rid})
        assert_problem(resp, 401)
        assert resp.headers["www-authenticate"].startswith("Bearer"), name
        rejected.append(rid)
    # The same request with the real token does reach the service, and is logged there...
    good = f"edge-good-{stamp}"
    resp = httpx.get(
        f"{edge_gateway.url}/todos", headers={"Authorization": f"Bearer {alice.token}", "X-Request-ID": good}
    )
    assert resp.status_code == 200, resp.text
    assert logged(todos, good)
    # ...so by now the rejected ones would have been logged too, had they arrived.
    service_log = todos.logs()
    assert not [rid for rid in rejected if rid in service_log]
    metrics = httpx.get(f"{edge_gateway.metrics_url}/metrics").text
    counted = re.search(r'gateway_edge_rejections_total\{reason="unauthenticated"\} (\S+)', metrics)
    assert counted and float(counted.group(1)) >= len(rejected)


async def test_a_token_without_the_routes_scope_is_problem_403_at_the_edge(
    edge_gateway: ServiceProcess, suite: Suite, alice: User
) -> None:
    profile_only = await suite.login(alice, scope="profile")
    headers = {"Authorization": f"Bearer {profile_only}"}
    resp = httpx.get(f"{edge_gateway.url}/todos", headers=headers)
    assert_problem(resp, 403)
    assert 'error="insufficient_scope"' in resp.headers["www-authenticate"]
    # /auth/me asks only for a valid token at the edge; the auth service checks "profile".
    me = httpx.get(f"{edge_gateway.url}/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["id"] == alice.id


async def test_public_routes_need_no_token(edge_gateway: ServiceProcess) -> None:
    assert httpx.get(f"{edge_gateway.url}/ping", params={"ECHOMSG": "hi"}).json()["message"] == "hi"
    assert httpx.get(f"{edge_gateway.url}/.well-known/jwks.json").json()["keys"]
    # The token endpoint answers as RFC 6749 says: it was reached, not stopped at the edge.
    resp = httpx.post(f"{edge_gateway.url}/auth/token", data={"grant_type": "password"})
    assert resp.status_code in (400, 401)
    assert "error" in resp.json()


async def test_protected_routes_answer_401_without_a_token(edge_gateway: ServiceProcess) -> None:
    for method, path in [("GET", "/auth/me"), ("DELETE", "/auth/me"), ("POST", "/todos"), ("GET", "/reports")]:
        assert_problem(httpx.request(method, f"{edge_gateway.url}{path}"), 401)


async def test_forged_identity_headers_are_stripped(edge_gateway: ServiceProcess, alice: User) -> None:
    forged = {
        "X-User-Id": "00000000-0000-0000-0000-000000000666",
        "X-Auth-Subject": "admin",
        "X-Auth-Scopes": "todos:read:any",
        "X-Forwarded-User": "admin",
        "X-Remote-User": "admin",
        "Remote-User": "admin",
    }
    resp = httpx.get(f"{edge_gateway.url}/reports/whoami", headers={"Authorization": f"Bearer {alice.token}", **forged})
    _, received = echoed(resp)
    assert not {name.lower() for name in forged} & received.keys()
    assert received["authorization"] == [f"Bearer {alice.token}"]


async def test_the_access_log_names_the_verified_subject(edge_gateway: ServiceProcess, alice: User) -> None:
    rid = f"edge-subject-{time.time_ns()}"
    headers = {"Authorization": f"Bearer {alice.token}", "X-Request-ID": rid}
    assert httpx.get(f"{edge_gateway.url}/todos", headers=headers).status_code == 200
    access = [line for line in logged(edge_gateway, rid) if line.get("event") == "request"]
    assert access and access[0]["subject"] == alice.id
    assert alice.token not in edge_gateway.logs()
