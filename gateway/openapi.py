"""``/openapi.json``: every service's spec merged into one, and ``/docs`` showing it (no CDN).

Each service's ``/openapi.json`` is fetched from one of its instances; the paths
the gateway routes to that service are kept (not its ``/healthz``, ``/metrics``...),
with their components. A schema name two services define differently is renamed
``<service>_<name>`` in the second one, references included. A service that does
not answer is listed under ``x-unavailable`` and the rest is served. The result is
kept for ``openapi_cache_seconds``.

The merged document declares auth's authorization code flow as the ``oauth2``
scheme, on this origin (``/auth/authorize``, ``/auth/token``), and offers it on
every operation that asks for a bearer token, with the scopes that operation
needs; ``/docs`` (Swagger UI, the kit's files, served here) signs in with it.

Every operation also documents what the gateway itself may answer in front of the
service (:func:`add_edge_statuses`): 502 (no instance reachable), 503/504, 429 (rate
limits), 413, 401/403 on the routes checked at the edge, and 400 for a path with
``.``/``..`` segments where the path has parameters.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import aiohttp
from aiohttp import web

from gateway.balancer import Upstream
from gateway.routing import PREFIXES, requirement_for
from services.kit.contract import (
    BODY_METHODS,
    SCOPE_DESCRIPTIONS,
    SHARED_STATUSES,
    add_missing,
    problem_response,
)
from services.kit.docs import DocsOAuth, docs_asset, docs_html, oauth2_redirect_html
from services.kit.problem import Problem
from services.kit.security import BEARER_SCHEME_NAME

_MAX_SPEC_BYTES = 2 * 1024 * 1024
_FETCH_TIMEOUT_SECONDS = 3.0
OAUTH2_SCHEME_NAME = "oauth2"
_NO_CACHE = {"Cache-Control": "no-cache"}


def routed(path: str, prefixes: Iterable[str]) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.removeprefix("#/components/schemas/")
            if name in renames:
                return {**node, "$ref": "#/components/schemas/" + renames[name]}
        return {key: _rename_refs(value, renames) for key, value in node.items()}
    if isinstance(node, list):
        return [_rename_refs(value, renames) for value in node]
    return node


_EDGE_STATUSES = {
    **SHARED_STATUSES,
    502: "The gateway could not reach any instance of the service, or the exchange broke.",
}


def add_edge_statuses(path: str, item: dict[str, Any]) -> dict[str, Any]:
    """``item`` (a path item) with the statuses the gateway adds in front of every service."""
    item = {method: {**op, "responses": dict(op.get("responses", {}))} for method, op in item.items()}
    for method, operation in item.items():
        statuses = dict(_EDGE_STATUSES)
        if method in BODY_METHODS:
            statuses[413] = "The request body is larger than the gateway accepts."
        if "{" in path:
            statuses[400] = "The path has '.' or '..' segments."
        if requirement_for(path) is not None:
            statuses[401] = "No valid access token (checked at the gateway)."
            statuses[403] = "The token carries no scope of this route's family (checked at the gateway)."
        for status, description in statuses.items():
            add_missing(operation, status, problem_response(description, status))
        operation["responses"] = dict(sorted(operation["responses"].items(), key=lambda entry: int(entry[0])))
    return item


def _tagged(item: dict[str, Any], service: str) -> dict[str, Any]:
    return {method: {**op, "tags": [service]} if isinstance(op, dict) else op for method, op in item.items()}


def merge(specs: dict[str, dict[str, Any]], unavailable: list[str]) -> dict[str, Any]:
    """One OpenAPI document from the services' documents, keyed by service name."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "Quartet",
            "version": "1",
            "description": "Every Quartet service's API as served by the gateway.",
        },
        "paths": {},
        "components": {},
        "tags": [],
    }
    components: dict[str, dict[str, Any]] = merged["components"]
    for service, spec in specs.items():
        prefixes = [prefix for prefix, name in PREFIXES if name == service]
        theirs: dict[str, dict[str, Any]] = spec.get("components") or {}
        renames = {
            name: f"{service}_{name}"
            for name, schema in (theirs.get("schemas") or {}).items()
            if name in components.get("schemas", {}) and components["schemas"][name] != schema
        }
        spec = _rename_refs(spec, renames) if renames else spec
        for kind, entries in (spec.get("components") or {}).items():
            for name, value in (entries or {}).items():
                components.setdefault(kind, {})[renames.get(name, name) if kind == "schemas" else name] = value
        for path, item in (spec.get("paths") or {}).items():
            if routed(path, prefixes):
                merged["paths"][path] = _tagged(add_edge_statuses(path, item), service)
        # One group per service, under the gateway's name for it (a service's own name may carry a suffix).
        described = [tag.get("description") for tag in spec.get("tags") or [] if tag.get("description")]
        description = described[0] if described else (spec.get("info") or {}).get("description", "")
        merged["tags"].append({"name": service, "description": description})
    if unavailable:
        merged["x-unavailable"] = sorted(unavailable)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    return merged


def with_oauth2(spec: dict[str, Any], scopes: Iterable[str]) -> dict[str, Any]:
    """``spec`` with the ``oauth2`` scheme offered (first) wherever a bearer token is required.

    The scheme lists ``scopes`` and every scope an operation needs.
    """
    listed = dict.fromkeys(scopes)
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict) or not operation.get("security"):
                continue
            requirements: list[dict[str, list[str]]] = operation["security"]
            oauth = [{OAUTH2_SCHEME_NAME: r[BEARER_SCHEME_NAME]} for r in requirements if BEARER_SCHEME_NAME in r]
            for requirement in oauth:
                listed.update(dict.fromkeys(requirement[OAUTH2_SCHEME_NAME]))
            operation["security"] = [*oauth, *requirements]
    # Relative URLs (OpenAPI 3.1 allows them): the token request stays on whichever origin served /docs.
    flow = {
        "authorizationUrl": "/auth/authorize",
        "tokenUrl": "/auth/token",
        "scopes": {s: SCOPE_DESCRIPTIONS.get(s, s) for s in listed},
    }
    oauth2 = {
        "type": "oauth2",
        "description": "Sign in with a Quartet account (authorization code + PKCE).",
        "flows": {"authorizationCode": flow},
    }
    components = spec.setdefault("components", {})
    # First, so Swagger UI's Authorize dialog opens with the sign-in above the paste-a-token box.
    components["securitySchemes"] = {OAUTH2_SCHEME_NAME: oauth2, **components.get("securitySchemes", {})}
    return spec


class MergedOpenAPI:
    def __init__(
        self,
        upstreams: Iterable[Upstream],
        session: Callable[[], aiohttp.ClientSession],
        cache_seconds: float,
        docs_oauth: DocsOAuth,
    ) -> None:
        self._upstreams = {upstream.name: upstream for upstream in upstreams}
        self._session = session
        self._cache_seconds = cache_seconds
        self._cached: tuple[float, bytes] | None = None
        self._lock = asyncio.Lock()
        self._scopes = docs_oauth.scopes
        self._docs = docs_html("Quartet", docs_oauth)

    async def docs(self, request: web.Request) -> web.Response:
        """``GET /docs``."""
        return web.Response(text=self._docs, content_type="text/html", headers=_NO_CACHE)

    async def docs_oauth2_redirect(self, request: web.Request) -> web.Response:
        """``GET /docs/oauth2-redirect``: where auth sends the Authorize popup back."""
        return web.Response(text=oauth2_redirect_html(), content_type="text/html", headers=_NO_CACHE)

    async def docs_static(self, request: web.Request) -> web.FileResponse:
        """``GET /docs/static/{name}``: Swagger UI's files, served here (never proxied)."""
        asset = docs_asset(request.match_info["name"])
        if asset is None:
            raise Problem(404)
        path, content_type = asset
        return web.FileResponse(path, headers={**_NO_CACHE, "Content-Type": content_type})

    async def handle(self, request: web.Request) -> web.Response:
        """``GET /openapi.json``."""
        body = await self._document()
        return web.Response(body=body, content_type="application/json", headers={"Cache-Control": "no-cache"})

    async def _document(self) -> bytes:
        async with self._lock:
            if self._cached is not None and time.monotonic() < self._cached[0]:
                return self._cached[1]
            names = list(self._upstreams)
            fetched = await asyncio.gather(*(self._fetch(self._upstreams[name]) for name in names))
            specs = {name: spec for name, spec in zip(names, fetched, strict=True) if spec is not None}
            unavailable = [name for name, spec in zip(names, fetched, strict=True) if spec is None]
            body = json.dumps(with_oauth2(merge(specs, unavailable), self._scopes)).encode()
            # A partial document is kept only briefly: the missing service may be starting.
            keep = min(self._cache_seconds, 2.0) if unavailable else self._cache_seconds
            self._cached = (time.monotonic() + keep, body)
            return body

    async def _fetch(self, upstream: Upstream) -> dict[str, Any] | None:
        instance = upstream.pick()
        timeout = aiohttp.ClientTimeout(total=_FETCH_TIMEOUT_SECONDS)
        try:
            async with self._session().get(instance.url + "/openapi.json", timeout=timeout) as response:
                if response.status != 200:
                    return None
                raw = await response.content.read(_MAX_SPEC_BYTES + 1)
            if len(raw) > _MAX_SPEC_BYTES:
                return None
            spec = json.loads(raw)
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return None
        return spec if isinstance(spec, dict) else None
