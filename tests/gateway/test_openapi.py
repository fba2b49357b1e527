"""The merged /openapi.json over the real auth, todos and ping processes."""

from __future__ import annotations

import httpx

from tests.gateway.conftest import StartGateway
from tests.suite import Suite
from tests.support import ServiceProcess


async def test_merged_openapi_lists_every_running_services_paths(
    start_gateway: StartGateway, suite: Suite, ping_service: ServiceProcess
) -> None:
    gateway = start_gateway(
        {
            "AUTH_URL": suite.auth_url,
            "AUTH_URLS": suite.auth_url,
            "TODOS_URLS": suite.todos_url,
            "PING_URLS": ping_service.url,
        }
    )  # reports: nothing listening
    resp = httpx.get(f"{gateway.url}/openapi.json", timeout=15)
    assert resp.status_code == 200
    spec = resp.json()
    assert spec["openapi"].startswith("3.")
    paths = set(spec["paths"])
    assert {"/ping", "/auth/token", "/auth/register", "/auth/me", "/todos"} <= paths
    assert any(path.startswith("/todos/") for path in paths)
    assert any(path.startswith("/.well-known/") for path in paths)
    # Only what the gateway routes: each service's own probes stay private.
    assert not {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs"} & paths
    assert spec["x-unavailable"] == ["reports"]
    # Every reference resolves inside the merged document.
    text = resp.text
    schemas = spec.get("components", {}).get("schemas", {})
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in schemas, ref
    # The docs page renders this document, from the gateway itself.
    docs = httpx.get(f"{gateway.url}/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text
