"""A reports "lab" for fault tests: its own reports service and todos process, and workers started per test.

The lab's todos process has a fixed port, so a test can stop it and start it
again where the worker expects it. Workers started through ``workers`` are
stopped (or found killed) when the test ends, so they take no other test's jobs.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg
import pytest

from services.reports.app import create_app
from services.reports.config import ReportsSettings
from services.reports.migrations import MIGRATIONS
from services.reports.pdf_fonts import PdfFonts, load_fonts
from tests.factories import TestIssuer
from tests.inprocess import InProcessService, migrated_database, serve, settings_for
from tests.suite import Suite, launch
from tests.support import ServiceProcess, unique

StartWorker = Callable[..., Awaitable[ServiceProcess]]


@dataclass
class Lab:
    suite: Suite
    todos_name: str = "todos-lab"
    reports_name: str = "reports-lab"
    restarts: int = field(default=0)

    @property
    def todos_url(self) -> str:
        return self.suite.processes[self.todos_name].url

    @property
    def reports_url(self) -> str:
        return self.suite.processes[self.reports_name].url

    def stop_todos(self) -> None:
        self.suite.processes[self.todos_name].stop()

    def start_todos(self) -> None:
        proc = self.suite.processes[self.todos_name]
        if proc.proc.poll() is None:
            return
        self.restarts += 1
        env = self.suite.envs[self.todos_name]
        self.suite.processes[self.todos_name] = launch(self.todos_name, env, self.suite.log_dir, module=proc.module)

    async def purge_jobs_queue(self) -> None:
        connection = await aio_pika.connect(self.suite.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.suite.jobs_queue(self.reports_name), passive=True)
            await queue.purge()

    async def jobs_waiting(self) -> int:
        """Messages ready in the lab's jobs queue."""
        connection = await aio_pika.connect(self.suite.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.declare_queue(self.suite.jobs_queue(self.reports_name), passive=True)
            return int(queue.declaration_result.message_count or 0)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.suite.envs[self.reports_name]["DATABASE_URL"])
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def pdf_fonts() -> PdfFonts:
    """The PDF fonts of the default settings (Debian's paths), loaded once: what a worker loads at start."""
    return load_fonts(ReportsSettings())


@pytest.fixture(scope="module")
async def lab(suite: Suite) -> AsyncIterator[Lab]:
    lab = Lab(suite)
    await suite.start_service("todos-lab", of="todos", env={"SERVICE_NAME": unique("todos_lab"), "DB_POOL_MAX": "6"})
    env = suite.reports_env(
        TODOS_URL=lab.todos_url,
        TODOS_PAGE_SIZE="10",
        FETCH_ATTEMPTS="40",
        MAX_UNFINISHED_JOBS="20",
        JOB_SWEEP_INTERVAL_SECONDS="0.5",  # bounds stay at their defaults: tests age a job instead of waiting
    )
    await suite.start_service("reports-lab", of="reports", env=env)
    try:
        yield lab
    finally:
        for name in ("reports-lab", "todos-lab"):
            suite.processes.pop(name).stop()


@pytest.fixture
async def workers(suite: Suite, lab: Lab) -> AsyncIterator[StartWorker]:
    """Start lab workers (``await workers("w1", FETCH_ATTEMPTS="3")``); all stopped after the test."""
    started: list[str] = []
    lab.start_todos()

    async def start(name: str, **env: str) -> ServiceProcess:
        name = f"{name}-{unique('lab')}"
        started.append(name)
        return await suite.start_worker(name, service=lab.reports_name, env=env)

    try:
        yield start
    finally:
        for name in started:
            suite.processes.pop(name).stop()
        lab.start_todos()


@pytest.fixture
async def completed_events(suite: Suite) -> AsyncIterator[Callable[[], Awaitable[list[dict[str, Any]]]]]:
    """Collect the ``report.completed`` events published from now on; call the result to read them."""
    connection = await aio_pika.connect(suite.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(suite.exchange)
        queue = await channel.declare_queue(f"test.reports.{unique('done')}", exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="report.completed")
        got: list[dict[str, Any]] = []

        async def read() -> list[dict[str, Any]]:
            while (message := await queue.get(no_ack=True, fail=False)) is not None:
                got.append(json.loads(message.body))
            return got

        yield read


@pytest.fixture(scope="module")
async def reports_app(issuer: TestIssuer) -> AsyncIterator[InProcessService]:
    """Reports in this process with a throwaway database (no worker: for the API's own checks)."""
    async with migrated_database(MIGRATIONS) as dsn:
        settings = settings_for(ReportsSettings, dsn, service_name=unique("reports"))
        app = create_app(settings, fetch_jwks=issuer.fetch_jwks)
        async with serve(app, issuer, extra_queues=[settings.jobs_queue]) as service:
            yield service
