"""The app a person enjoys (issue 25): refusals said in words, register → signed in, undo, a phone
layout with nothing cut off, report pages, and an axe-core check of every page at two sizes."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, Request, ViewportSize, expect

from tests.browser.axe import assert_accessible
from tests.browser.conftest import artifact
from tests.browser.test_app import (
    SIGN_IN_FORM,
    add_todo,
    api_register,
    api_todos,
    api_token,
    is_call,
    sign_in,
    sign_in_to,
)
from tests.suite import Suite

pytestmark = pytest.mark.browser

DESKTOP = ViewportSize(width=1280, height=800)
PHONE = ViewportSize(width=390, height=844)
SIZES = (("1280", DESKTOP), ("390", PHONE))

# Every visible element that reaches past the right edge of the window (cut off, or scrolled to).
OVERFLOWING = """() => [...document.querySelectorAll('body *')].filter((el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== 'hidden' && box.right > window.innerWidth + 0.5;
}).map((el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + '.' + [...el.classList].join('.'))"""


async def fits(page: Page, name: str) -> None:
    """Nothing wider than the window: no horizontal scrolling, and no element past its right edge."""
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), name
    assert await page.evaluate(OVERFLOWING) == [], name


async def at_both_sizes(page: Page, name: str, *, phone_check: Any = None) -> None:
    """Screenshots at 1280x800 and 390x844; the phone fits; axe finds nothing serious at either size."""
    for label, size in SIZES:
        await page.set_viewport_size(size)
        await page.wait_for_timeout(150)  # a chart redraws at its new width
        if size is PHONE:
            await fits(page, name)
            if phone_check is not None:
                await phone_check()
        await page.screenshot(path=artifact(f"usability-{name}-{label}.png"), full_page=True)
        await assert_accessible(page, f"{name} at {label}px")
    await page.set_viewport_size(DESKTOP)


async def signed_in(page: Page, web: Suite, path: str = "/app/") -> str:
    email = await api_register(web)
    await page.set_viewport_size(DESKTOP)
    await page.goto(path)
    await sign_in_at(page, email, path)
    return email


async def sign_in_at(page: Page, email: str, path: str) -> None:
    await sign_in_to(page, email, path)
    await expect(page.get_by_role("button", name="Log out")).to_be_visible()


async def test_refused_todos_are_said_beside_the_field_in_words(page: Page, web: Suite) -> None:
    await signed_in(page, web)
    await expect(page.locator("#todo-empty")).to_be_visible()
    posts: list[Request] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and r.url.endswith("/todos") else None)
    field, error = page.get_by_label("New todo"), page.locator("#new-todo-error")

    # Only spaces: nothing is sent, the field says why.
    await field.fill("   ")
    await field.press("Enter")
    await expect(error).to_have_text("Write something first: a todo cannot be empty or only spaces.")
    await expect(field).to_have_attribute("aria-invalid", "true")
    # Too long: kept whole (not cut at 1000), counted, refused with the numbers.
    await field.fill("x" * 1500)
    await expect(page.locator("#new-todo-count")).to_have_text("1500 / 1000: 500 too many")
    assert len(await field.input_value()) == 1500
    await field.press("Enter")
    await expect(error).to_have_text("A todo can have at most 1000 characters; this one has 1500. Shorten it by 500.")
    await page.wait_for_timeout(300)
    assert posts == []
    await at_both_sizes(page, "refused-add")

    # A control character is the server's to refuse: its detail is a sentence, never a pattern.
    async with page.expect_response(is_call("POST", r"/todos$")) as refused:
        await field.fill("ring the bell\u0007")
        await field.press("Enter")
    assert (await refused.value).status == 422
    alert = page.get_by_role("alert").filter(has_text="Could not add the todo").locator(".text")
    await expect(alert).to_have_text(
        "Could not add the todo: Content must not contain control characters (tab and line breaks are fine)."
    )
    assert "pattern" not in (await alert.inner_text())
    await expect(error).to_be_hidden()

    # Editing down to blank keeps the editor open and says what to do; Escape keeps the old text.
    await field.fill("keep me")
    await add_todo(page, "keep me")
    await page.get_by_role("button", name="Edit: keep me").click()
    await page.get_by_label("Edit todo").fill("  ")
    await page.get_by_label("Edit todo").press("Enter")
    await expect(page.locator("#todo-list .field-error")).to_have_text(
        "A todo cannot be empty or only spaces. Change the text, or press Cancel (Esc) to keep it as it was."
    )
    await expect(page.get_by_label("Edit todo")).to_be_focused()
    await at_both_sizes(page, "refused-edit")
    await page.get_by_label("Edit todo").press("Escape")
    await expect(page.locator("#todo-list li .content")).to_have_text(["keep me"])


async def test_a_todo_refused_by_the_api_is_a_sentence(web: Suite) -> None:
    """`{"content":"   "}` and a control character, from curl: 422 whose detail is a sentence."""
    email = await api_register(web)
    headers = {"Authorization": f"Bearer {await api_token(web, email)}"}
    async with httpx.AsyncClient(base_url=web.gateway_url, headers=headers, timeout=10) as http:
        for body, said in (
            ({"content": "   "}, "Content must not be only whitespace."),
            ({"content": "a\u0001b"}, "Content must not contain control characters (tab and line breaks are fine)."),
        ):
            resp = await http.post("/todos", json=body)
            assert resp.status_code == 422 and resp.headers["content-type"].startswith("application/problem+json")
            problem = resp.json()
            assert problem["detail"] == said, problem
            assert [(e["field"], e["msg"]) for e in problem["errors"]] == [("content", said[0].lower() + said[1:-1])]
            assert "pattern" not in resp.text and "^[" not in resp.text


async def test_a_deleted_todo_can_be_undone_for_a_few_seconds(page: Page, web: Suite) -> None:
    email = await api_register(web)
    await api_todos(web, email, ["gone for good", "undo me"])
    await page.goto("/app/")
    await sign_in(page, email)
    texts = page.locator("#todo-list li .content")
    await expect(texts).to_have_text(["undo me", "gone for good"])
    deletes: list[str] = []
    page.on("request", lambda r: deletes.append(r.url) if r.method == "DELETE" else None)

    await page.get_by_role("button", name="Delete: undo me").click()
    await expect(texts).to_have_text(["gone for good"])
    await expect(page.locator("#flash")).to_contain_text("Deleted “undo me”.")
    await page.screenshot(path=artifact("usability-undo-1280.png"))
    await page.get_by_role("button", name="Undo").click()
    await expect(texts).to_have_text(["undo me", "gone for good"])
    await expect(page.get_by_role("button", name="Finish: undo me")).to_be_focused()

    async with page.expect_response(is_call("DELETE", r"/todos/")) as deleted:
        await page.get_by_role("button", name="Delete: gone for good").click()
    assert (await deleted.value).status == 204
    assert len(deletes) == 1  # the undone one was never sent
    await page.reload()
    await expect(texts).to_have_text(["undo me"])


async def test_the_list_lines_up_counts_and_fits_a_phone(page: Page, web: Suite) -> None:
    email = await api_register(web)
    made = await api_todos(web, email, ["water the plants", "L" + " a long todo" * 80, "call the bank"])
    async with httpx.AsyncClient(
        base_url=web.gateway_url, headers={"Authorization": f"Bearer {await api_token(web, email)}"}, timeout=10
    ) as http:
        assert (await http.put(f"/todos/{made[0]['id']}/finish")).status_code == 200
    await page.set_viewport_size(DESKTOP)
    await page.goto("/app/")
    await sign_in(page, email)
    rows = page.locator("#todo-list li")
    await expect(rows).to_have_count(3)
    await expect(page.locator("#todo-count")).to_have_text("3 todos: 2 open, 1 finished.")
    # Always "added <date>" (the list's order); finishing is shown beside it.
    await expect(page.locator("#todo-list .meta > span:first-child")).to_have_text([re.compile(r"^added ")] * 3)
    await expect(page.locator("#todo-list li.finished .badge")).to_have_text([re.compile(r"^finished ")])
    # Short accessible names, however long the todo.
    labels = await page.locator("#todo-list button[aria-label]").evaluate_all("bs => bs.map(b => b.ariaLabel)")
    assert labels and max(len(label) for label in labels) <= 50, labels
    # A long todo is clamped to three lines until "Show all".
    long = rows.nth(1).locator(".content")
    line = float(await long.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)"))
    assert (await long.bounding_box() or {"height": 0})["height"] <= 3 * line + 1
    await rows.nth(1).get_by_role("button", name="Show all").click()
    assert (await long.bounding_box() or {"height": 0})["height"] > 3 * line + 1
    await rows.nth(1).get_by_role("button", name="Show less").click()

    async def same_width_buttons() -> None:
        widths = await page.locator("#todo-list .actions button").evaluate_all(
            "bs => bs.map(b => Math.round(b.getBoundingClientRect().width))"
        )
        assert len(widths) == 9 and len(set(widths)) == 1, widths  # Finish, Reopen, Edit, Delete alike

    await same_width_buttons()
    await at_both_sizes(page, "todos", phone_check=same_width_buttons)


async def test_diagnostics_fits_a_phone_with_readable_axis_labels(page: Page, web: Suite) -> None:
    await signed_in(page, web)
    await page.get_by_role("link", name="Diagnostics").click()
    await expect(page.locator("#ping-status")).to_have_text(re.compile("^Done"), timeout=30_000)

    async def readable() -> None:
        heights = await page.locator("svg.chart .tick").evaluate_all(
            "ts => ts.map(t => t.getBoundingClientRect().height)"
        )
        assert heights and min(heights) >= 11, heights  # px on screen, not shrunk with the picture
        await expect(page.locator("#ping-answered")).to_be_visible()  # who answered: below the table

    await at_both_sizes(page, "diagnostics", phone_check=readable)


async def test_reports_page_through_the_list_and_say_when_there_is_nothing_yet(page: Page, web: Suite) -> None:
    email = await signed_in(page, web, "/app/reports")
    await expect(page.locator("#no-activity")).to_have_text(
        "No activity yet. Add or finish a todo and it shows here within a few seconds."
    )
    await expect(page.locator("#summary svg.chart")).to_have_count(0)
    await at_both_sizes(page, "reports-empty")

    # Twelve reports (the service allows five unfinished at a time): ten, then "Load more".
    headers = {"Authorization": f"Bearer {await api_token(web, email)}"}
    async with httpx.AsyncClient(base_url=web.gateway_url, headers=headers, timeout=10) as http:
        await http.post("/todos", json={"content": "one thing"})
        for batch in (4, 4, 4):
            ids = [(await http.post("/reports", json={"format": "json"})).json()["id"] for _ in range(batch)]
            for report_id in ids:
                for _ in range(100):
                    if (await http.get(f"/reports/{report_id}")).json()["status"] in {"done", "failed"}:
                        break
                    await asyncio.sleep(0.2)
    await page.reload()
    entries = page.locator("#report-list li[data-id]")
    await expect(entries).to_have_count(10)
    async with page.expect_response(is_call("GET", r"/reports\?.*cursor=")):
        await page.get_by_role("button", name="Load more").click()
    await expect(entries).to_have_count(12)
    await expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    # One todo today: whole-number ticks (no "0.5"), readable on a phone.
    await expect(page.locator("#summary svg.chart")).to_have_count(1)
    ticks = await page.locator("#summary svg.chart .tick").evaluate_all("ts => ts.map(t => t.textContent)")
    assert [t for t in ticks if re.fullmatch(r"\d+", t)] == ["0", "1"], ticks

    async def readable() -> None:
        heights = await page.locator("#summary svg.chart .tick").evaluate_all(
            "ts => ts.map(t => t.getBoundingClientRect().height)"
        )
        assert min(heights) >= 11, heights

    await at_both_sizes(page, "reports", phone_check=readable)


async def test_sign_in_pages_and_a_session_that_ends_are_clear_and_accessible(page: Page, web: Suite) -> None:
    email = await api_register(web)
    await page.goto("/app/")
    await page.wait_for_url(SIGN_IN_FORM)
    await expect(page.get_by_role("link", name="Create an account")).to_be_visible()
    await expect(page.get_by_role("link", name=re.compile("^Back to "))).to_be_visible()
    await at_both_sizes(page, "auth-sign-in")
    await page.get_by_role("link", name="Create an account").click()
    await page.get_by_role("button", name="Create account").click()  # empty: said per field
    await expect(page.locator("#email-error")).to_contain_text("email")
    await at_both_sizes(page, "auth-register")
    await page.get_by_role("link", name="Sign in", exact=True).click()

    # "Back to the app" cancels: the app says so, with both ways on; no tab is highlighted.
    await page.get_by_role("link", name=re.compile("^Back to ")).click()
    await page.wait_for_url(re.compile(r"/app/login$"))
    await expect(page.get_by_text("Sign-in was cancelled. You are not signed in.")).to_be_visible()
    await expect(page.locator("[data-nav][aria-current]")).to_have_count(0)
    await at_both_sizes(page, "app-login")

    # A refresh the server refuses (the session was revoked elsewhere): the page says the session ended.
    await page.get_by_role("button", name="Sign in").click()
    await sign_in_at(page, email, "/app/")
    await page.evaluate("sessionStorage.setItem('quartet.refresh_token', 'revoked-elsewhere')")
    await page.evaluate("import('/app/js/auth.js').then((auth) => auth.refresh()).catch(() => null)")
    await expect(page.get_by_text("Your session has ended")).to_be_visible()
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await expect(page.locator("[data-nav][aria-current]")).to_have_count(0)
    await page.screenshot(path=artifact("usability-session-ended-1280.png"))

    await page.goto("/app/no-such-page")
    await at_both_sizes(page, "not-found")
