"""The SPA under /app/ and the redirect to it."""

from __future__ import annotations

import httpx
import pytest

from tests.gateway.checks import raw_request
from tests.gateway.conftest import StartGateway
from tests.support import ROOT, ServiceProcess


def test_root_redirects_to_the_app(gateway: ServiceProcess) -> None:
    resp = httpx.get(f"{gateway.url}/")
    assert resp.status_code == 302
    assert resp.headers["location"] == "/app/"
    assert resp.headers["x-request-id"]


def test_app_serves_index_html(gateway: ServiceProcess) -> None:
    resp = httpx.get(f"{gateway.url}/app/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert resp.text == (ROOT / "web" / "index.html").read_text()
    assert "Quartet" in resp.text


@pytest.mark.parametrize("path", ["/app/callback?code=abc&state=xyz", "/app/todos/42", "/app/index.html"])
def test_client_side_routes_get_index_html(gateway: ServiceProcess, path: str) -> None:
    resp = httpx.get(f"{gateway.url}{path}")
    assert resp.status_code == 200
    assert resp.text == (ROOT / "web" / "index.html").read_text()


def test_app_without_slash_redirects(gateway: ServiceProcess) -> None:
    resp = httpx.get(f"{gateway.url}/app")
    assert resp.status_code == 302
    assert resp.headers["location"] == "/app/"


@pytest.mark.parametrize(
    "target",
    [
        "/app/../pyproject.toml",
        "/app/%2e%2e/pyproject.toml",
        "/app/..%2fpyproject.toml",
        "/app/%2e%2e%2fpyproject.toml",
        "/app/....//pyproject.toml",
        "/app/../../../../etc/passwd",
        "/app/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/app//etc/passwd",
    ],
)
def test_paths_outside_web_never_leak(gateway: ServiceProcess, target: str) -> None:
    status, _, body = raw_request(
        gateway.port, f"GET {target} HTTP/1.1\nHost: 127.0.0.1:{gateway.port}\nConnection: close"
    )
    assert b"[project]" not in body and b"root:" not in body
    assert status in (200, 404)  # index.html or a problem, never the file


def test_app_config_lists_the_local_region_by_default(gateway: ServiceProcess) -> None:
    config = httpx.get(f"{gateway.url}/app/config.json").json()
    assert config["regions"] == [{"name": "local", "url": "/ping"}]
    assert config["pageSize"] >= 1  # the rest of web/config.json is kept


def test_ping_regions_reach_the_app_and_its_csp(start_gateway: StartGateway) -> None:
    gw = start_gateway({"PING_REGIONS": "eu=/ping,us=https://us.quartet.example/ping"})
    config = httpx.get(f"{gw.url}/app/config.json").json()
    assert config["regions"] == [
        {"name": "eu", "url": "/ping"},
        {"name": "us", "url": "https://us.quartet.example/ping"},
    ]
    csp = httpx.get(f"{gw.url}/app/").headers["content-security-policy"]
    assert "connect-src 'self' https://us.quartet.example;" in csp
