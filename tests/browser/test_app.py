"""The web app in a real browser against the real suite behind the gateway (issue 9)."""

from __future__ import annotations

import asyncio
import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, Page, Request, Route, expect

from tests.auth.flows import PASSWORD
from tests.browser.conftest import ACCESS_TOKEN_TTL_SECONDS, artifact
from tests.suite import PING_REGION, USER_SCOPES, Suite

pytestmark = pytest.mark.browser


def new_email() -> str:
    return f"web-{secrets.token_hex(5)}@example.com"


async def api_token(web: Suite, email: str) -> str:
    async with web.flows() as flows:
        tokens = await flows.sign_in(email, USER_SCOPES, PASSWORD)
    return str(tokens["access_token"])


async def api_register(web: Suite) -> str:
    email = new_email()
    async with web.flows() as flows:
        await flows.register(email)
    return email


async def api_todos(web: Suite, email: str, contents: list[str]) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {await api_token(web, email)}"}
    async with httpx.AsyncClient(base_url=web.gateway_url, headers=headers, timeout=10) as http:
        created = []
        for content in contents:
            resp = await http.post("/todos", json={"content": content})
            assert resp.status_code == 201, resp.text
            created.append(resp.json())
    return created


SIGN_IN_FORM = re.compile(r"/auth/authorize\?")


async def sign_in(page: Page, email: str) -> None:
    """A protected page of the app goes straight to the auth service's form (one step), then back."""
    await page.wait_for_url(SIGN_IN_FORM)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/app/$"))
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()


def todo_texts(page: Page) -> Any:
    return page.locator("#todo-list li .content")


def is_call(method: str, pattern: str) -> Any:
    regex = re.compile(pattern)

    def matches(response: Any) -> bool:
        return bool(response.request.method == method and regex.search(response.url))

    return matches


async def add_todo(page: Page, content: str) -> None:
    async with page.expect_response(is_call("POST", r"/todos$")) as created:
        await page.get_by_label("New todo").fill(content)
        await page.get_by_label("New todo").press("Enter")
    assert (await created.value).status == 201
    await expect(page.locator("#todo-list li.pending")).to_have_count(0)


async def test_a_user_keeps_a_todo_list_across_sessions(page: Page, web: Suite) -> None:
    # The app sends a stranger straight to the sign-in form; registering there signs you in.
    await page.goto("/app/")
    await page.wait_for_url(SIGN_IN_FORM)
    await page.screenshot(path=artifact("01-sign-in.png"), full_page=True)
    await page.get_by_role("link", name="Create an account").click()
    email = new_email()
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Name (optional)").fill("Ada Web")
    await page.get_by_label("Password").fill(PASSWORD)
    await page.screenshot(path=artifact("02-register.png"), full_page=True)
    await page.get_by_role("button", name="Create account").click()
    await page.wait_for_url(re.compile(r"/app/$"))
    await expect(page.locator("#todo-empty")).to_have_text("Nothing to do yet. Add your first todo above.")
    await expect(page.locator("#account .who")).to_have_text("Ada Web")

    # Three todos, newest first; edit one, finish one, delete one.
    for content in ("buy milk", "write report", "call mom"):
        await add_todo(page, content)
    await expect(todo_texts(page)).to_have_text(["call mom", "write report", "buy milk"])

    async with page.expect_response(is_call("PATCH", r"/todos/[0-9a-f-]+$")) as patched:
        await page.get_by_role("button", name="Edit: buy milk").click()
        await page.get_by_label("Edit todo").fill("buy oat milk")
        await page.get_by_label("Edit todo").press("Enter")
    assert (await patched.value).status == 200
    async with page.expect_response(is_call("PUT", r"/finish$")) as finished:
        await page.get_by_role("button", name="Finish: write report").click()
    assert (await finished.value).status == 200
    async with page.expect_response(is_call("DELETE", r"/todos/")) as deleted:  # once the undo time is up
        await page.get_by_role("button", name="Delete: call mom").click()
        await expect(page.get_by_role("button", name="Undo")).to_be_visible()
    assert (await deleted.value).status == 204
    await expect(todo_texts(page)).to_have_text(["write report", "buy oat milk"])
    await expect(page.locator("#todo-list li.finished .content")).to_have_text(["write report"])

    # The server has it (a reload keeps the session: the refresh token is in sessionStorage).
    await page.reload()
    await expect(todo_texts(page)).to_have_text(["write report", "buy oat milk"])
    await page.get_by_role("radio", name="Open").check()
    await expect(todo_texts(page)).to_have_text(["buy oat milk"])
    await page.get_by_role("radio", name="Finished").check()
    await expect(todo_texts(page)).to_have_text(["write report"])
    await page.get_by_role("radio", name="All").check()
    await expect(todo_texts(page)).to_have_count(2)

    # Across a page boundary (10 a page): 12 more through the API, then "Load more".
    bulk = [f"bulk {n:02d}" for n in range(1, 13)]
    await api_todos(web, email, bulk)
    await page.reload()
    newest_first = [*reversed(bulk), "write report", "buy oat milk"]
    await expect(todo_texts(page)).to_have_text(newest_first[:10])
    await page.get_by_role("button", name="Load more").click()
    await expect(todo_texts(page)).to_have_text(newest_first)
    await expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    await page.screenshot(path=artifact("04-todos.png"), full_page=True)

    # Log out (the refresh token is revoked): the login page says so and offers both ways on.
    async with page.expect_response(is_call("POST", r"/auth/revoke$")) as revoked:
        await page.get_by_role("button", name="Log out").click()
    assert (await revoked.value).status == 200
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await expect(page.get_by_text("You are logged out.")).to_be_visible()
    await expect(page.locator("[data-nav][aria-current]")).to_have_count(0)  # no tab is this page
    assert await page.evaluate("sessionStorage.getItem('quartet.refresh_token')") is None

    # Registering again with the same email: refused in words, with a way to sign in instead.
    await page.get_by_role("button", name="Create an account").click()
    await page.wait_for_url(SIGN_IN_FORM)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Create account").click()
    await expect(page.get_by_role("alert")).to_contain_text("An account with this email already exists.")
    await page.get_by_role("link", name="Sign in instead").click()
    await expect(page.get_by_label("Email")).to_have_value(email)
    # A wrong password keeps the email; the right one signs in: the same list.
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_have_text("Invalid email or password.")
    await expect(page.get_by_label("Email")).to_have_value(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"/app/$"))
    await expect(todo_texts(page)).to_have_text(newest_first[:10])

    # Phone width: everything still fits (no horizontal scrolling).
    await page.set_viewport_size({"width": 375, "height": 800})
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    await page.screenshot(path=artifact("05-todos-phone.png"), full_page=True)
    await page.set_viewport_size({"width": 1100, "height": 900})

    # Diagnostics: numbers for the region, and who answered.
    await page.get_by_role("link", name="Diagnostics").click()
    row = page.locator('#ping-table tr[data-region="local"]')
    await expect(row.locator("td").nth(1)).to_have_text("20", timeout=20_000)
    for cell in ("min", "p50", "p95", "max"):
        await expect(row.locator(f"td.{cell}")).to_have_text(re.compile(r"^\d+\.\d ms$"))
    await expect(row.locator("td.answered")).to_have_text(re.compile(rf"^{PING_REGION} / ping-\d+$"))
    await expect(page.locator("#ping-chart svg.chart circle")).to_have_count(20)
    await expect(page.locator("#ping-status")).to_have_text("Done: 20 samples per region.")
    await page.screenshot(path=artifact("06-diagnostics.png"), full_page=True)

    await request_and_download_reports(page)


async def request_and_download_reports(page: Page) -> None:
    await page.get_by_role("link", name="Reports").click()
    # The read model follows the todo events: 14 todos exist, one finished.
    stats = page.locator("#summary dl.stats dd")
    for _ in range(20):
        if await stats.count() and (await stats.all_inner_texts())[:3] == ["14", "13", "1"]:
            break
        await page.wait_for_timeout(500)
        await page.get_by_role("link", name="Reports").click()
    await expect(stats.nth(0)).to_have_text("14")
    await expect(page.locator("#summary svg.chart rect")).to_have_count(60)

    for fmt, label in (("csv", "CSV"), ("pdf", "PDF"), ("json", "JSON")):
        async with page.expect_response(is_call("POST", r"/reports$")) as requested:
            await page.get_by_role("button", name=f"Request {label}").click()
        assert (await requested.value).status == 202
        entry = page.locator(f'#report-list li[data-format="{fmt}"]').first
        await expect(entry).to_have_attribute("data-status", "done", timeout=30_000)
    await page.screenshot(path=artifact("07-reports.png"), full_page=True)

    for fmt in ("csv", "pdf", "json"):
        async with page.expect_download() as info:
            await page.locator(f'#report-list li[data-format="{fmt}"]').first.get_by_role("button").click()
        download = await info.value
        assert download.suggested_filename.endswith(f".{fmt}"), download.suggested_filename
        path = await download.path()
        data = path.read_bytes()
        if fmt == "csv":
            text = data.decode()
            assert "buy oat milk" in text and "bulk 12" in text and "call mom" not in text
        elif fmt == "json":
            assert "buy oat milk" in data.decode() and json.loads(data)
        else:
            assert data.startswith(b"%PDF")


async def test_a_second_user_cannot_see_the_first_users_todos(page: Page, web: Suite) -> None:
    alice = await api_register(web)
    (secret,) = await api_todos(web, alice, ["alice's secret plan"])
    bob = await api_register(web)

    await page.goto("/app/")
    await sign_in(page, bob)
    await expect(page.locator("#todo-empty")).to_be_visible()
    await expect(todo_texts(page)).to_have_count(0)
    # Not even by id, with Bob's own token from inside the app.
    status = await page.evaluate(
        """async (id) => {
            const { api } = await import('/app/js/api.js');
            try { await api(`/todos/${id}`); return 200; } catch (error) { return error.status; }
        }""",
        secret["id"],
    )
    assert status == 404


async def test_an_access_token_that_expires_in_use_is_refreshed_unnoticed(
    context: BrowserContext, page: Page, web: Suite
) -> None:
    """The page's clock runs 16 minutes ahead (past any token lifetime) while the page is
    open: the app's scheduled refresh is real (the auth service rotates the refresh token),
    only the waiting is skipped. The user stays on the page and the next change succeeds."""
    email = await api_register(web)
    await page.clock.install()
    await page.goto("/app/")
    await sign_in(page, email)
    bearer: list[str] = []
    refreshes: list[Request] = []

    def seen(request: Request) -> None:
        if "/todos" in request.url and request.headers.get("authorization"):
            bearer.append(request.headers["authorization"])
        if request.url.endswith("/auth/token") and "grant_type=refresh_token" in (request.post_data or ""):
            refreshes.append(request)

    page.on("request", seen)
    await add_todo(page, "before expiry")
    async with page.expect_response(is_call("POST", r"/auth/token$")) as refreshed:
        await page.clock.fast_forward("16:00")
    assert (await refreshed.value).status == 200
    await add_todo(page, "after expiry")
    await expect(todo_texts(page)).to_have_text(["after expiry", "before expiry"])
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await expect(page.locator("#flash")).to_be_empty()
    assert len(refreshes) == 1
    assert bearer[0] != bearer[-1]


async def test_reports_page_says_so_when_the_service_does_not_answer(page: Page, web: Suite) -> None:
    """What the gateway answers when the reports upstream is down (502 problem+json), played
    back for /reports only: the rest of the app keeps working."""
    email = await api_register(web)
    await page.route(
        lambda url: urlsplit(url).path.split("/")[1] == "reports",
        lambda route: route.fulfill(
            status=502,
            content_type="application/problem+json",
            body='{"type":"about:blank","title":"Bad Gateway","status":502,"detail":"no healthy upstream"}',
        ),
    )
    await page.goto("/app/reports")
    await sign_in_to(page, email, "/app/reports")
    await expect(page.locator("#summary .note")).to_contain_text("Reports are not available right now")
    await expect(page.locator("#requests .note")).to_contain_text("Reports are not available right now")
    await page.screenshot(path=artifact("08-reports-unavailable.png"), full_page=True)
    await page.get_by_role("link", name="Todos").click()
    await expect(page.locator("#todo-empty")).to_be_visible()


async def sign_in_to(page: Page, email: str, path: str) -> None:
    await page.wait_for_url(SIGN_IN_FORM)
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(re.escape(path) + "$"))


async def test_a_change_the_server_refuses_is_rolled_back_with_a_message(page: Page, web: Suite) -> None:
    """The edit carries If-Match from the ETag the app was given; the todo changed elsewhere
    in between, so the server answers 412: the app undoes its optimistic edit, says why in
    words, and shows what the server has now."""
    email = await api_register(web)
    await page.goto("/app/")
    await sign_in(page, email)
    await expect(page.locator("#todo-empty")).to_be_visible()
    await add_todo(page, "draft")  # the POST's ETag is remembered
    todo_id = await page.locator("#todo-list li").first.get_attribute("data-id")
    token = await api_token(web, email)
    async with httpx.AsyncClient(base_url=web.gateway_url, headers={"Authorization": f"Bearer {token}"}) as http:
        resp = await http.patch(f"/todos/{todo_id}", json={"content": "changed in another tab"})
        assert resp.status_code == 200, resp.text

    async with page.expect_response(is_call("PATCH", r"/todos/")) as patched:
        await page.get_by_role("button", name="Edit: draft").click()
        await page.get_by_label("Edit todo").fill("my version")
        await page.get_by_label("Edit todo").press("Enter")
    assert (await patched.value).status == 412
    assert (await patched.value).request.headers["if-match"] == '"1"'
    await expect(page.get_by_role("alert")).to_contain_text(
        "Could not save the change: the todo changed since you read it"
    )
    await expect(todo_texts(page)).to_have_text(["changed in another tab"])
    await page.screenshot(path=artifact("09-rolled-back.png"), full_page=True)


async def test_todos_are_usable_by_keyboard_alone(page: Page, web: Suite) -> None:
    email = await api_register(web)
    await page.goto("/app/")
    await sign_in(page, email)
    await expect(page.locator("#todo-empty")).to_be_visible()
    await page.get_by_label("New todo").focus()
    await page.keyboard.type("typed, not clicked")
    async with page.expect_response(is_call("POST", r"/todos$")):
        await page.keyboard.press("Enter")
    await expect(page.locator("#todo-list li:not(.pending) .content")).to_have_text(["typed, not clicked"])
    # Tab from the field: Add, the three filters (one tab stop), then the todo's Finish button.
    for _ in range(3):
        await page.keyboard.press("Tab")
    focused = await page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "Finish: typed, not clicked", focused
    async with page.expect_response(is_call("PUT", r"/finish$")):
        await page.keyboard.press("Enter")
    await expect(page.locator("#todo-list li.finished .content")).to_have_text(["typed, not clicked"])
    # Focus stays on the same todo (its Reopen button replaced Finish).
    await expect(page.get_by_role("button", name="Reopen: typed, not clicked")).to_be_focused()


@pytest.mark.slow
async def test_a_token_the_server_finds_expired_is_refreshed_and_the_call_retried(page: Page, web: Suite) -> None:
    """For real: the page's clock stands still (so the app neither refreshes on schedule nor
    notices the expiry itself) while the real one runs past the access token's lifetime
    (60 s here, no leeway at the gateway). The next change meets a 401; the app refreshes
    and sends it again, and the user sees only the change."""
    email = await api_register(web)
    await page.clock.install()
    await page.goto("/app/")
    await sign_in(page, email)
    await expect(page.locator("#todo-empty")).to_be_visible()
    await page.clock.pause_at(datetime.now() + timedelta(seconds=1))
    statuses: list[tuple[str, int]] = []
    # The live stream's reconnects (no live service in this suite: 502s) are not the calls in question.
    page.on(
        "response",
        lambda r: (
            None
            if urlsplit(r.url).path.startswith("/live/")
            else statuses.append((f"{r.request.method} {urlsplit(r.url).path}", r.status))
        ),
    )
    await asyncio.sleep(ACCESS_TOKEN_TTL_SECONDS + 3)
    await page.clock.resume()

    async with page.expect_response(lambda r: is_call("POST", r"/todos$")(r) and r.status != 401):
        await page.get_by_label("New todo").fill("after a real expiry")
        await page.get_by_label("New todo").press("Enter")
    await expect(page.locator("#todo-list li:not(.pending) .content")).to_have_text(["after a real expiry"])
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()
    await expect(page.locator("#flash")).to_be_empty()
    assert statuses == [("POST /todos", 401), ("POST /auth/token", 200), ("POST /todos", 201)], statuses


async def test_switching_pages_quickly_shows_only_the_last_one(page: Page, web: Suite) -> None:
    email = await api_register(web)
    await api_todos(web, email, ["one"])
    await page.goto("/app/")
    await sign_in(page, email)

    async def slowly(route: Route) -> None:  # a slow network, not a different answer
        await asyncio.sleep(1)
        await route.continue_()

    await page.route(lambda url: urlsplit(url).path == "/reports/summary", slowly)
    for name in ("Reports", "Todos", "Reports", "Diagnostics"):
        await page.get_by_role("link", name=name, exact=True).click()
    await expect(page.locator("#view h1")).to_have_text(["Diagnostics"])
    await page.wait_for_timeout(1500)  # the reports pages' answers have landed by now
    await expect(page.locator("#view h1")).to_have_text(["Diagnostics"])
    await page.go_back()
    await expect(page.locator("#view h1")).to_have_text(["Reports"])
