"""The gateway's /docs in a real browser: Swagger UI signs in through our auth and calls the API (issue 12)."""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

import pytest
from playwright.async_api import BrowserContext, Page, Request, expect

from tests.auth.flows import PASSWORD
from tests.browser.axe import assert_accessible
from tests.browser.conftest import artifact
from tests.suite import Suite

pytestmark = pytest.mark.browser

LOOPBACK = {"127.0.0.1", "localhost"}


def left_the_machine(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme in {"data", "blob"}:  # made in the page itself
        return False
    return parts.hostname not in LOOPBACK


async def test_authorize_signs_in_and_try_it_out_lists_my_todos_through_the_gateway(
    context: BrowserContext, page: Page, web: Suite
) -> None:
    user = await web.register()
    content = f"documented {secrets.token_hex(4)}"
    async with web.client(user, base_url=web.gateway_url) as http:
        assert (await http.post("/todos", json={"content": content})).status_code == 201
    requests: list[Request] = []
    context.on("request", lambda request: requests.append(request))  # every page of the context, the sign-in popup too

    await page.goto("/docs")
    await page.get_by_role("button", name="Authorize", exact=True).click()
    dialog = page.locator(".modal-ux")
    oauth = dialog.locator(".auth-container").filter(has_text="authorizationCode")
    await expect(oauth.get_by_label("client_id")).to_have_value("quartet-docs")
    async with page.expect_popup() as opened:
        await oauth.get_by_role("button", name="Apply given OAuth2 credentials").click()
    popup = await opened.value
    popup_errors: list[str] = []
    popup.on("pageerror", lambda error: popup_errors.append(str(error)))
    await popup.wait_for_url(re.compile(r"/auth/authorize\?"))
    await expect(popup.get_by_text("Quartet API docs", exact=True)).to_be_visible()
    await popup.get_by_label("Email").fill(user.email)
    await popup.get_by_label("Password").fill(PASSWORD)
    async with popup.expect_event("close"):
        await popup.get_by_role("button", name="Sign in").click()
    assert popup_errors == []
    await expect(oauth.get_by_role("heading", name="Authorized")).to_be_visible()
    await dialog.get_by_role("button", name="Close").first.click()

    operation = page.locator(".opblock-get").filter(has=page.locator('[data-path="/todos"]'))
    await operation.locator(".opblock-summary").click()
    await operation.get_by_role("button", name="Try it out").click()
    async with page.expect_response(lambda r: urlsplit(r.url).path == "/todos") as answered:
        await operation.get_by_role("button", name="Execute").click()
    response = await answered.value
    assert response.status == 200
    assert (await response.request.header_value("authorization") or "").startswith("Bearer ")
    live = operation.locator(".live-responses-table")
    await expect(live.locator("tr.response .response-col_status")).to_have_text("200")
    await expect(live).to_contain_text(content)
    await page.screenshot(path=artifact("docs-try-it-out.png"), full_page=False)

    urls = [request.url for request in requests]
    paths = {(request.method, urlsplit(request.url).path) for request in requests}
    # The whole journey was recorded: the UI's files, the sign-in, the code exchange, the call.
    assert {
        ("GET", "/docs/static/swagger-ui-bundle.js"),
        ("GET", "/openapi.json"),
        ("GET", "/auth/authorize"),
        ("POST", "/auth/authorize"),
        ("GET", "/docs/oauth2-redirect"),
        ("POST", "/auth/token"),
        ("GET", "/todos"),
    } <= paths, sorted(paths)
    assert [url for url in urls if left_the_machine(url)] == []


async def test_the_docs_page_has_no_serious_accessibility_violations(page: Page, web: Suite) -> None:
    await page.goto("/docs")
    await expect(page.locator(".opblock-tag-section").first).to_be_visible()
    await assert_accessible(page, "/docs")
