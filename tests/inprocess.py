"""Services in the test's own process: the middle of the test pyramid.

``migrated_database`` gives a throwaway database with a service's migrations applied
by the kit's runner (dropped afterwards). ``serve`` starts a service's app in this
event loop — Quart's ``test_app`` runs its real start and stop hooks: pool, migrations,
event bus on the real RabbitMQ, token verifier — and sends requests through httpx's
ASGI transport, so in-process tests use the same client (and ``assert_problem``) as
the process-level ones, without a socket or a child process.

Tokens come from a :class:`~tests.factories.TestIssuer` the app trusts through
``create_app(settings, fetch_jwks=...)``; nothing else is faked.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
from quart import Quart

from services.kit.app import kit_of
from services.kit.config import ServiceSettings
from services.kit.migrations import MigrationSource, migrate
from tests.factories import TEST_ISSUER_URL, TestIssuer, User
from tests.support import AMQP_URL, TEST_PRODUCERS, create_database, delete_event_queues, drop_database, unique

S = TypeVar("S", bound=ServiceSettings)
BASE_URL = "http://testserver"
RETRY_DELAYS = (0.2, 0.5)


@asynccontextmanager
async def migrated_database(migrations: Sequence[MigrationSource]) -> AsyncIterator[str]:
    """A new database with ``migrations`` applied; yields its DSN and drops it afterwards."""
    name, dsn = await create_database()
    try:
        await migrate(dsn, migrations)
        yield dsn
    finally:
        await drop_database(name)


MigratedDatabase = Callable[[Sequence[MigrationSource]], Awaitable[str]]


@asynccontextmanager
async def migrated_databases() -> AsyncIterator[MigratedDatabase]:
    """``make(migrations)`` returns the DSN of a new migrated database; all are dropped on exit."""
    async with AsyncExitStack() as stack:

        async def make(migrations: Sequence[MigrationSource]) -> str:
            return await stack.enter_async_context(migrated_database(migrations))

        yield make


def settings_for(cls: type[S], dsn: str | None, **overrides: Any) -> S:
    """``cls`` for an in-process service: its own database, exchange and queues, the test issuer."""
    values: dict[str, Any] = {
        "database_url": dsn,
        "auth_url": TEST_ISSUER_URL,
        "amqp_url": AMQP_URL,
        "events_exchange": unique("test_inproc_events"),
        "events_queue_prefix": unique("inproc"),
        "events_retry_delays": RETRY_DELAYS,
        "events_producers": TEST_PRODUCERS,
        "db_pool_min": 1,
        "db_pool_max": 5,  # PostgreSQL's connections are shared with every other test run on the machine
        **overrides,
    }
    return cls(**values)


@dataclass
class InProcessService:
    """A started app, its settings and the issuer it trusts."""

    app: Quart
    settings: ServiceSettings
    issuer: TestIssuer

    @asynccontextmanager
    async def client(self, user: User | None = None, *, token: str | None = None) -> AsyncIterator[httpx.AsyncClient]:
        """A client sending ``user``'s token (or ``token``; neither: no Authorization header)."""
        bearer = token or (user.token if user else None)
        async with asgi_client(self.app, {"Authorization": f"Bearer {bearer}"} if bearer else {}) as http:
            yield http


async def wait_ready(app: Quart, timeout: float = 30.0) -> None:
    """Wait for ``/readyz`` to answer 200 (broker connected, keys loaded), as the process harness does."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with asgi_client(app) as http:
        while (ready := await http.get("/readyz")).status_code != 200:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{kit_of(app).settings.service_name} not ready after {timeout}s: {ready.text}")
            await asyncio.sleep(0.05)


def asgi_client(app: Quart, headers: dict[str, str] | None = None, base_url: str = BASE_URL) -> httpx.AsyncClient:
    """An httpx client whose requests go straight to ``app`` (started with ``app.test_app()``)."""
    # Quart's ASGI signature is typed with hypercorn's types, httpx's with its own: the same protocol.
    asgi: Any = app
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url=base_url, headers=headers, timeout=30)


@asynccontextmanager
async def serve(app: Quart, issuer: TestIssuer, extra_queues: Sequence[str] = ()) -> AsyncIterator[InProcessService]:
    """Start ``app`` here (built with ``fetch_jwks=issuer.fetch_jwks`` if it checks tokens); stop it after.

    The event queues it declared (and ``extra_queues``) are deleted afterwards: they are durable
    and uniquely named.
    """
    kit = kit_of(app)
    try:
        async with app.test_app():
            await wait_ready(app)
            yield InProcessService(app, kit.settings, issuer)
    finally:
        if "broker" in kit.readiness_checks:
            settings = kit.settings
            prefixes = {settings.events_queue_name_prefix}
            await delete_event_queues(settings.amqp_url, settings.events_exchange, prefixes, RETRY_DELAYS, extra_queues)
