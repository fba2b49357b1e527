"""What browsers meet at the edge: CORS, security headers, the docs page; and slow clients."""

from __future__ import annotations

import re
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest

from services.kit.docs import DOCS_CSP
from tests.gateway.conftest import StartGateway
from tests.support import ServiceProcess, assert_problem

ALLOWED = "http://localhost:8080"  # the default CORS_ORIGINS
DENIED = "https://evil.example"


def preflight(
    gateway: ServiceProcess, origin: str, method: str = "POST", headers: str = "authorization, content-type"
) -> httpx.Response:
    return httpx.options(
        f"{gateway.url}/todos",
        headers={"Origin": origin, "Access-Control-Request-Method": method, "Access-Control-Request-Headers": headers},
    )


def test_preflight_from_an_allowed_origin_is_answered_at_the_edge(gateway: ServiceProcess) -> None:
    resp = preflight(gateway, ALLOWED)
    assert resp.status_code == 204
    assert resp.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in resp.headers["access-control-allow-methods"]
    assert set(resp.headers["access-control-allow-headers"].split(", ")) == {"authorization", "content-type"}
    assert int(resp.headers["access-control-max-age"]) > 0
    assert "Origin" in resp.headers["vary"]


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [(DENIED, "POST", "authorization"), (ALLOWED, "TRACE", ""), (ALLOWED, "GET", "x-user-id")],
)
def test_preflight_from_a_denied_origin_or_for_an_unlisted_method_or_header_is_refused(
    gateway: ServiceProcess, origin: str, method: str, headers: str
) -> None:
    resp = preflight(gateway, origin, method, headers)
    assert_problem(resp, 403)
    assert "access-control-allow-origin" not in resp.headers


def test_actual_requests_carry_cors_fields_only_for_allowed_origins(gateway: ServiceProcess) -> None:
    allowed = httpx.get(f"{gateway.url}/ping", headers={"Origin": ALLOWED})
    assert allowed.headers["access-control-allow-origin"] == ALLOWED
    assert "X-Request-ID" in allowed.headers["access-control-expose-headers"]
    assert "Origin" in allowed.headers["vary"]
    # A 401 at the edge is readable by the app too (it must see the status to sign in).
    unauthenticated = httpx.get(f"{gateway.url}/todos", headers={"Origin": ALLOWED})
    assert unauthenticated.status_code == 401
    assert unauthenticated.headers["access-control-allow-origin"] == ALLOWED
    denied = httpx.get(f"{gateway.url}/ping", headers={"Origin": DENIED})
    assert denied.status_code == 200
    assert "access-control-allow-origin" not in denied.headers


@pytest.mark.parametrize("path", ["/ping", "/app/", "/docs", "/healthz", "/nowhere", "/todos"])
def test_security_headers_are_on_every_answer(gateway: ServiceProcess, path: str) -> None:
    resp = httpx.get(f"{gateway.url}{path}")
    assert resp.headers["x-content-type-options"] == "nosniff"
    assert resp.headers["referrer-policy"] == "no-referrer"
    assert resp.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in resp.headers["content-security-policy"]
    assert "strict-transport-security" not in resp.headers  # plain http here


def test_the_app_and_the_docs_get_their_own_content_security_policy(gateway: ServiceProcess) -> None:
    app_csp = httpx.get(f"{gateway.url}/app/").headers["content-security-policy"]
    assert "default-src 'self'" in app_csp and "'unsafe-inline'" not in app_csp
    docs = httpx.get(f"{gateway.url}/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert docs.headers["content-security-policy"] == DOCS_CSP
    api_csp = httpx.get(f"{gateway.url}/ping").headers["content-security-policy"]
    assert api_csp.startswith("default-src 'none'")


def test_the_docs_and_their_files_come_from_the_gateway_itself_under_the_strict_docs_csp(
    gateway: ServiceProcess,
) -> None:
    # This gateway's upstreams answer nothing about docs: every file below is its own.
    docs = httpx.get(f"{gateway.url}/docs")
    references = re.findall(r'(?:src|href)="([^"]*)"', docs.text)
    assert "docs/static/swagger-ui-bundle.js" in references and "docs/static/docs.js" in references
    # No CDN: every file the page names is on this origin (relative, no scheme, no //host).
    assert [ref for ref in references if urlsplit(ref).scheme or urlsplit(ref).netloc] == []
    assert "<script>" not in docs.text  # nothing inline to run: the CSP allows 'self' only
    assert '"clientId": "quartet-docs"' in docs.text
    for path, content_type in [
        ("/docs/static/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/static/swagger-ui.css", "text/css"),
        ("/docs/static/docs.js", "text/javascript"),
        ("/docs/static/oauth2-redirect.js", "text/javascript"),
        ("/docs/oauth2-redirect", "text/html"),
    ]:
        resp = httpx.get(f"{gateway.url}{path}")
        assert resp.status_code == 200, path
        assert resp.headers["content-type"].startswith(content_type), path
        assert resp.headers["content-security-policy"] == DOCS_CSP, path
        assert resp.headers["x-content-type-options"] == "nosniff"
    for path in ["/docs/static/swagger-ui-bundle.js.map", "/docs/static/index.html", "/docs/static/..%2Fdocs.py"]:
        assert_problem(httpx.get(f"{gateway.url}{path}"), 404)
    assert "unsafe-eval" not in DOCS_CSP and "unsafe-inline" not in DOCS_CSP


def test_a_client_that_never_finishes_its_request_head_is_disconnected(start_gateway: StartGateway) -> None:
    gateway = start_gateway({"HEADER_READ_TIMEOUT_SECONDS": "1"})
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        for _ in range(3):  # dribble a header line now and then, never the blank line
            time.sleep(0.3)
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                break
        closed = sock.recv(1024) == b""  # waits until the gateway closes the connection
        elapsed = time.monotonic() - started
    assert closed
    assert elapsed < 12  # well before the socket timeout: the gateway hung up
    # Other clients were served all along.
    assert httpx.get(f"{gateway.url}/healthz").status_code == 200


def test_hsts_only_when_https_is_vouched_for_by_a_trusted_proxy(
    start_gateway: StartGateway, gateway: ServiceProcess
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    # The shared gateway trusts no proxy: a client cannot ask for HSTS.
    assert "strict-transport-security" not in httpx.get(f"{gateway.url}/healthz", headers=https).headers
    behind_proxy = start_gateway({"TRUSTED_PROXIES": "127.0.0.1/32"})
    hsts = httpx.get(f"{behind_proxy.url}/healthz", headers=https).headers["strict-transport-security"]
    assert hsts.startswith("max-age=")
    assert "strict-transport-security" not in httpx.get(f"{behind_proxy.url}/healthz").headers
