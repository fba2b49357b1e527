"""The suite behind a real gateway, and Debian's chromium driven by playwright.

Everything runs on free ports with throwaway databases and its own event exchange, so
it runs beside a ``make up`` suite: auth, todos, reports + worker (when the service
exists), ping, and ``python -m gateway`` in front of them serving ``web/`` at /app/.
The gateway port is picked first, because the auth service must know the redirect URIs
of the app and of /docs (``WEB_EXTRA_REDIRECT_URIS``, ``DOCS_EXTRA_REDIRECT_URIS``) when
it starts.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.auth.conftest import auth_env
from tests.suite import Suite
from tests.support import ROOT, ServiceProcess, create_database, free_port

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
HAS_REPORTS = (ROOT / "services" / "reports" / "__main__.py").exists()
PING_REGION = "test-region"
# The shortest access token auth allows, and no leeway at the gateway: a token really
# expires during the session (test_app's real-expiry test waits it out).
ACCESS_TOKEN_TTL_SECONDS = 60


@dataclass
class WebSuite(Suite):
    """The Suite of tests/suite.py plus ping and the gateway; auth accepts the app's callback."""

    gateway_port: int = 0

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    async def start(self) -> None:
        self.gateway_port = free_port()
        db_name, dsn = await create_database()
        self.databases.append(db_name)
        port = free_port()
        env = auth_env(
            port,
            dsn,
            EVENTS_EXCHANGE=self.exchange,
            WEB_EXTRA_REDIRECT_URIS=f"{self.gateway_url}/app/callback",
            DOCS_EXTRA_REDIRECT_URIS=f"{self.gateway_url}/docs/oauth2-redirect",
            ACCESS_TOKEN_TTL_SECONDS=str(ACCESS_TOKEN_TTL_SECONDS),
        )
        auth = ServiceProcess("services.auth", env, self.log_dir / f"auth-{port}.log")
        self.processes["auth"] = auth
        auth.wait_ready()
        await self.start_service("todos", "services.todos")
        if HAS_REPORTS:
            await self.start_service("reports", "services.reports", self.reports_env())
            await self.start_worker("reports-worker")
        ping_port = free_port()
        ping_env = {"PORT": str(ping_port), "REGION": PING_REGION, "INSTANCE": f"ping-{ping_port}"}
        self.processes["ping"] = ping = ServiceProcess(
            "services.ping", ping_env, self.log_dir / f"ping-{ping_port}.log"
        )
        ping.wait_ready()
        reports_url = self.processes["reports"].url if HAS_REPORTS else f"http://127.0.0.1:{free_port()}"
        gateway_env = {
            "PORT": str(self.gateway_port),
            "METRICS_PORT": str(free_port()),
            "AUTH_URLS": self.auth_url,
            "TODOS_URLS": self.todos_url,
            "PING_URLS": ping.url,
            "REPORTS_URLS": reports_url,
            "AUTH_URL": self.auth_url,
            "CORS_ORIGINS": self.gateway_url,
            # One browser from one address signs in many times: no login budget here.
            "RATE_LIMIT_EXEMPT": "127.0.0.0/8",
            "TOKEN_LEEWAY_SECONDS": "0",
        }
        gateway = ServiceProcess("gateway", gateway_env, self.log_dir / f"gateway-{self.gateway_port}.log")
        self.processes["gateway"] = gateway
        gateway.wait_ready()


@pytest.fixture(scope="session")
async def web(log_dir: Path) -> AsyncIterator[WebSuite]:
    running = WebSuite(log_dir)
    try:
        await running.start()
        yield running
    finally:
        await running.stop()


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def context(browser: Browser, web: WebSuite) -> AsyncIterator[BrowserContext]:
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
