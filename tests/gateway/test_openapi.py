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
    )  # reports and live: nothing listening
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
    assert spec["x-unavailable"] == ["live", "reports"]
    # Every reference resolves inside the merged document.
    text = resp.text
    schemas = spec.get("components", {}).get("schemas", {})
    for ref in {part.split('"')[0] for part in text.split('"$ref": "#/components/schemas/')[1:]}:
        assert ref in schemas, ref
    # Authorize: auth's code + PKCE flow on this origin, offered wherever a token is required.
    oauth2 = spec["components"]["securitySchemes"]["oauth2"]
    flow = oauth2["flows"]["authorizationCode"]
    assert (oauth2["type"], flow["authorizationUrl"], flow["tokenUrl"]) == ("oauth2", "/auth/authorize", "/auth/token")
    assert {"profile", "todos:read", "todos:write", "reports:read", "reports:write"} <= set(flow["scopes"])
    assert spec["paths"]["/todos"]["get"]["security"][0] == {"oauth2": []}
    assert spec["paths"]["/todos"]["post"]["security"][0] == {"oauth2": ["todos:write"]}
    assert spec["paths"]["/auth/me"]["get"]["security"][0] == {"oauth2": ["profile"]}
    assert {"bearer": ["todos:write"]} in spec["paths"]["/todos"]["post"]["security"]  # a pasted token still works
    assert "security" not in spec["paths"]["/ping"]["get"] and "security" not in spec["paths"]["/auth/token"]["post"]
    # Grouped by service, in words (issue 25): a tag per service, scopes described, no RST backticks.
    assert {tag["name"] for tag in spec["tags"]} == {"auth", "todos", "ping"}
    operations = [(path, op) for path, item in spec["paths"].items() for op in item.values() if isinstance(op, dict)]
    for path, operation in operations:
        assert operation["tags"] == [path.split("/")[1] if not path.startswith("/.well-known") else "auth"], path
        assert "``" not in operation.get("summary", "") + operation.get("description", ""), path
    assert all(description != scope for scope, description in flow["scopes"].items()), flow["scopes"]
    assert flow["scopes"]["todos:write"] == "Add, change, finish and delete your todos."
    # The docs page renders this document, from the gateway itself.
    docs = httpx.get(f"{gateway.url}/docs")
    assert docs.status_code == 200 and "openapi.json" in docs.text
