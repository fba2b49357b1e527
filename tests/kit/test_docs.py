"""A service's own /docs: Swagger UI from its own origin, under a CSP with no inline code (in-process)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from quart import Blueprint, Quart

from services.kit.app import create_service_app
from services.kit.config import ServiceSettings
from services.kit.docs import DOCS_CSP
from services.kit.security import BEARER_SECURITY_SCHEME, require_scope


def make_app() -> Quart:
    bp = Blueprint("notes", __name__)

    @bp.get("/notes")
    @require_scope("notes:read")
    async def notes() -> dict[str, str]:
        """Protected."""
        return {}

    settings = ServiceSettings(service_name="docs-test", port=0)
    return create_service_app(settings, blueprints=[bp], title="docs <test>", security_schemes=BEARER_SECURITY_SCHEME)


async def test_the_docs_page_and_its_files_are_served_here_under_the_docs_csp() -> None:
    client = make_app().test_client()
    page = await client.get("/docs")
    assert page.status_code == 200 and page.headers["Content-Security-Policy"] == DOCS_CSP
    html = await page.get_data(as_text=True)
    assert "<title>docs &lt;test&gt; — API</title>" in html
    references = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert references and [ref for ref in references if urlsplit(ref).scheme or urlsplit(ref).netloc] == []
    # A service's Authorize takes a pasted token: no OAuth client here (see docs/kit.md).
    assert '"oauth"' not in html
    for ref in references:
        if ref.startswith("docs/static/"):
            resp = await client.get("/" + ref)
            assert resp.status_code == 200, ref
            assert resp.headers["Content-Security-Policy"] == DOCS_CSP, ref
    redirect = await client.get("/docs/oauth2-redirect")
    assert redirect.status_code == 200 and 'src="static/oauth2-redirect.js"' in await redirect.get_data(as_text=True)
    missing = await client.get("/docs/static/swagger-editor-bundle.js")  # in the package, not on the list
    assert missing.status_code == 404 and missing.content_type == "application/problem+json"


async def test_require_scope_declares_the_bearer_scheme_and_its_scopes_in_openapi() -> None:
    spec = await (await make_app().test_client().get("/openapi.json")).get_json()
    assert spec["paths"]["/notes"]["get"]["security"] == [{"bearer": ["notes:read"]}]
