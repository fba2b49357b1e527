"""The suite behind a real gateway, and Debian's chromium driven by playwright.

The harness of tests/suite.py runs auth, todos, reports + worker, ping and the gateway
(serving ``web/`` at /app/) on free ports with throwaway databases and its own event
exchange, so it runs beside a ``make up`` suite. The gateway port is picked first,
because the auth service must know the redirect URIs of the app and of /docs
(``WEB_EXTRA_REDIRECT_URIS``, ``DOCS_EXTRA_REDIRECT_URIS``) when it starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.suite import Suite, running
from tests.support import ROOT, free_port

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "tests" / "artifacts" / "browser"
# The shortest access token auth allows, and no leeway at the gateway: a token really
# expires during the session (test_app's real-expiry test waits it out).
ACCESS_TOKEN_TTL_SECONDS = 60


@pytest.fixture(scope="session")
async def web(log_dir: Path) -> AsyncIterator[Suite]:
    """The suite with ping and a gateway; auth accepts the app's and the docs' callbacks."""
    port = free_port()
    gateway_url = f"http://127.0.0.1:{port}"
    auth = {
        "WEB_EXTRA_REDIRECT_URIS": f"{gateway_url}/app/callback",
        "DOCS_EXTRA_REDIRECT_URIS": f"{gateway_url}/docs/oauth2-redirect",
        "ACCESS_TOKEN_TTL_SECONDS": str(ACCESS_TOKEN_TTL_SECONDS),
    }
    gateway = {
        "PORT": str(port),
        "CORS_ORIGINS": gateway_url,
        # One browser from one address signs in many times: no login budget here.
        "RATE_LIMIT_EXEMPT": "127.0.0.0/8",
        "TOKEN_LEEWAY_SECONDS": "0",
    }
    async with running(Suite(log_dir), auth=auth, ping={}, gateway=gateway) as started:
        yield started


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser, web: Suite) -> AsyncIterator[BrowserContext]:
    ctx = await browser.new_context(base_url=web.gateway_url, viewport={"width": 1100, "height": 900})
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        await ctx.close()


@pytest.fixture
async def page(context: BrowserContext) -> AsyncIterator[Page]:
    """A page of the app; no uncaught script error (or CSP violation) may happen on it."""
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" and _counts(msg.text) else None)
    yield page
    assert errors == [], errors


def _counts(text: str) -> bool:
    # Failed requests the app expects (a 404 probe, a refused stale form) log a console error too.
    return "Failed to load resource" not in text


def artifact(name: str) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return str(ARTIFACTS / name)
