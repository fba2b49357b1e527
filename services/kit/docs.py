"""``/docs``: Swagger UI over ``openapi.json``, served from our own origin (no CDN).

Swagger UI's files come from the ``swagger-ui-py`` package (pinned like every
dependency); the page, its init script and the OAuth redirect page are ours, in
``docs_assets/``. No inline script runs: the page's settings ride in a JSON data
block that ``docs.js`` reads, so the CSP allows scripts from ``'self'`` only.

Both servers mount the same four things: ``/docs`` (:func:`docs_html`),
``/docs/oauth2-redirect`` (:func:`oauth2_redirect_html`), ``/docs/static/<name>``
(:func:`docs_asset`, a fixed list of files, nothing else) and :data:`DOCS_CSP`
on each of them.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from quart import Blueprint, Response, send_file
from quart_schema import hide

from services.kit.problem import Problem

DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_OURS = Path(str(files("services.kit").joinpath("docs_assets")))


def _swagger_ui_dir() -> Path:
    # find_spec locates the package without importing it (its __init__ pulls in web-framework glue).
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


_SWAGGER_UI = _swagger_ui_dir()
# name → (file, content type). Source maps and the editor bundles are left out.
_ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (_SWAGGER_UI / "swagger-ui-bundle.js", "text/javascript"),
    "swagger-ui.css": (_SWAGGER_UI / "swagger-ui.css", "text/css"),
    "favicon-32x32.png": (_SWAGGER_UI / "favicon-32x32.png", "image/png"),
    "docs.css": (_OURS / "docs.css", "text/css"),
    "docs.js": (_OURS / "docs.js", "text/javascript"),
    "oauth2-redirect.js": (_OURS / "oauth2-redirect.js", "text/javascript"),
}


@dataclass(frozen=True)
class DocsOAuth:
    """What Swagger UI's Authorize needs: a public client and the scopes ticked by default."""

    client_id: str
    scopes: tuple[str, ...]


def docs_html(title: str, oauth: DocsOAuth | None = None) -> str:
    """The docs page, titled ``title``; it loads ``openapi.json`` relative to itself."""
    config: dict[str, object] = {"url": "openapi.json"}
    if oauth is not None:
        config["oauth"] = {"clientId": oauth.client_id, "scopes": list(oauth.scopes)}
    # A data block is never run; "<" escaped so no value can close the element.
    data = json.dumps(config).replace("<", "\\u003c")
    safe = title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    template = (_OURS / "index.html").read_text(encoding="utf-8")
    return template.replace("{{title}}", safe).replace("{{config}}", data)


def oauth2_redirect_html() -> str:
    """The page the authorization server sends the Authorize popup back to."""
    return (_OURS / "oauth2-redirect.html").read_text(encoding="utf-8")


def docs_asset(name: str) -> tuple[Path, str] | None:
    """The file and content type served as ``/docs/static/<name>``; None for any other name."""
    return _ASSETS.get(name)


def docs_blueprint(title: str) -> Blueprint:
    """``/docs`` of a service: Swagger UI over its own ``/openapi.json``; Authorize takes a pasted token."""
    bp = Blueprint("docs", __name__)
    page = docs_html(title)
    headers = {"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache"}

    @bp.get("/docs")
    @hide
    async def docs() -> Response:
        """Swagger UI over /openapi.json."""
        return Response(page, content_type="text/html; charset=utf-8", headers=headers)

    @bp.get("/docs/oauth2-redirect")
    @hide
    async def docs_oauth2_redirect() -> Response:
        """Where an Authorize popup comes back to."""
        return Response(oauth2_redirect_html(), content_type="text/html; charset=utf-8", headers=headers)

    @bp.get("/docs/static/<name>")
    @hide
    async def docs_static(name: str) -> Response:
        """Swagger UI's files and ours."""
        asset = docs_asset(name)
        if asset is None:
            raise Problem(404)
        response = await send_file(asset[0], mimetype=asset[1], conditional=True)
        response.headers.update(headers)
        return response

    return bp
