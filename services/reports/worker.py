"""The report worker: ``python -m services.reports.worker``.

It consumes ``<service>.jobs`` with prefetch 1 (so jobs spread over workers) and,
per job: takes a PostgreSQL advisory lock on the job id (held by its connection,
so a SIGKILLed worker releases it at once), marks the job running, fetches the
owner's todos page by page with a cached client-credentials token, renders the
file in a thread (PDF fonts are loaded once, at start: a missing font stops the
worker there, naming the Debian package to install), and in one transaction
stores the file, marks the job done and adds ``report.completed`` to the outbox. Only then is the message acked; a
redelivered job that is already finished is acked without work, so a job
completes once. Failures with a reason (todos unavailable past the retry budget,
a final refusal, rendering) mark the job failed; a job whose worker died
``max_job_attempts`` times is failed as a poison job.

A job's ``error`` is shown to its owner, so it holds only fixed phrases, one per kind
of failure (todos unreachable, refused, too many todos, rendering, poison job); the
detail (hosts, ports, statuses, exception types) goes to the log with the job id.

The process runs under the kit's runner (settings, logging, tracing, signals); it
consumes through the kit's supervised broker connection, which declares the jobs
queue and starts consuming again on every reconnect. On SIGTERM it stops taking
jobs at once and lets the job in hand finish within ``shutdown_grace_seconds``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import sys
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import aiohttp
import structlog
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractQueue
from aiohttp import web
from pydantic import ValidationError

from services.kit import runner
from services.kit.db import Connection, Database
from services.kit.events import Event, EventBus, MalformedEvent, ProducerCheck
from services.kit.events.broker import QueueSubscription
from services.kit.logging import get_logger
from services.kit.metrics import new_registry, serve_metrics
from services.kit.migrations import migrate
from services.kit.security import ClientCredentialsTokenSource
from services.kit.tracing import request_id_trace_config
from services.reports import events
from services.reports.config import ReportsSettings
from services.reports.jobs import declare_jobs_queue
from services.reports.migrations import MIGRATIONS
from services.reports.pdf_fonts import FontUnavailable, PdfFonts, load_fonts
from services.reports.render import ReportData, render
from services.reports.schemas import ReportRequested, TodoItem
from services.reports.store import read_model, report_jobs
from services.reports.todos_client import TodosClient, TodosRefused, TodosUnavailable

log = get_logger("reports.worker")

# Share of the progress bar the fetching takes; rendering and storing take the rest.
_FETCH_SHARE = 90
_BUSY_PAUSE_SECONDS = 1.0


class ReportTooLarge(Exception):
    """The user has more todos than one report may hold (its message is fit to show)."""

    @property
    def reason(self) -> str:
        return str(self)


RENDERING_FAILED = "the report could not be rendered"


class Outcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # gone (user deleted) or already finished: a redelivery
    BUSY = "busy"  # another live worker holds the job


class Worker:
    def __init__(self, settings: ReportsSettings, db: Database, todos: TodosClient, fonts: PdfFonts) -> None:
        self.settings = settings
        self.db = db
        self.todos = todos
        self.fonts = fonts
        # A job is a `report.requested` event: only the reports service's broker user may send one.
        self._producers = ProducerCheck(settings.events_producers, settings.broker_user)
        self._current: asyncio.Task[Any] | None = None
        self._stopping = False

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        if self._stopping:
            await message.nack(requeue=True)
            return
        self._current = asyncio.current_task()
        try:
            await self._handle(message)
        finally:
            self._current = None

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        try:
            event = Event.from_json(message.body)
            request = ReportRequested.model_validate(event.data)
        except (MalformedEvent, ValidationError) as error:
            log.error("unreadable job message dropped", error=str(error)[:500], message_id=message.message_id)
            await message.reject(requeue=False)
            return
        refusal = self._producers.refusal(event.type, self._producers.producer_of(message))
        if refusal is not None:
            log.error("job from an unauthorised producer dropped", error=refusal, message_id=message.message_id)
            await message.reject(requeue=False)
            return
        with structlog.contextvars.bound_contextvars(request_id=event.correlation_id, job_id=str(request.job_id)):
            try:
                outcome = await self.run_job(request.job_id)
            except Exception:
                # The database went away, say: give the job back; its attempts are counted.
                log.exception("job interrupted; requeued")
                await asyncio.sleep(_BUSY_PAUSE_SECONDS)
                await _settle(message, requeue=True)
                return
            if outcome is Outcome.BUSY:
                log.info("job held by another worker; requeued")
                await asyncio.sleep(_BUSY_PAUSE_SECONDS)
                await _settle(message, requeue=True)
                return
            await _settle(message)
            log.info("job settled", outcome=outcome.value, redelivered=message.redelivered)

    async def run_job(self, job_id: UUID) -> Outcome:
        """Run one job under its advisory lock (released when its connection ends, even by a crash)."""
        async with report_jobs.job_lock(self.db, job_id) as locked:
            return await self._run_locked(job_id) if locked else Outcome.BUSY

    async def _run_locked(self, job_id: UUID) -> Outcome:
        async with self.db.transaction() as conn:
            job = await report_jobs.job_by_id(conn, job_id)
            if job is None or job.finished:
                return Outcome.SKIPPED
            if job.attempts >= self.settings.max_job_attempts:
                reason = f"gave up after {job.attempts} unfinished attempts (worker stopped or lost its database)"
                await self._fail(conn, job.id, reason)
                return Outcome.FAILED
            started = await report_jobs.start_job(conn, job_id, self.settings.instance)
        assert started is not None
        log.info("job started", format=started.format, attempt=started.attempts)
        try:
            todos = await self._fetch(started)
        except (TodosUnavailable, TodosRefused, ReportTooLarge) as error:
            log.warning("fetching the todos failed", error=str(error))
            async with self.db.transaction() as conn:
                await self._fail(conn, job_id, error.reason)
            return Outcome.FAILED
        data = ReportData(job_id, started.owner_id, datetime.now(UTC), todos)
        try:
            file = await asyncio.to_thread(render, started.format, data, self.fonts)
        except Exception as error:
            log.exception("rendering failed", error_type=type(error).__name__)
            async with self.db.transaction() as conn:
                await self._fail(conn, job_id, RENDERING_FAILED)
            return Outcome.FAILED
        async with self.db.transaction() as conn:
            done = await report_jobs.complete_job(conn, job_id, file, len(todos))
            if done is None:  # purged (user deleted) while we worked
                return Outcome.SKIPPED
            await events.report_completed(conn, done, len(file.body))
        log.info("job done", todos=len(todos), bytes=len(file.body))
        return Outcome.DONE

    async def _fetch(self, job: report_jobs.JobRow) -> list[TodoItem]:
        async with self.db.connection() as conn:
            expected = max(1, await read_model.expected_todos(conn, job.owner_id))
        todos: list[TodoItem] = []

        async def note_retry(attempt: int, attempts: int, reason: str) -> None:
            async with self.db.connection() as conn:
                await report_jobs.note_retry(conn, job.id, attempt, attempts, reason)

        async for page in self.todos.pages(job.owner_id, on_retry=note_retry):
            todos.extend(page)
            if len(todos) > self.settings.max_report_todos:
                raise ReportTooLarge(f"more than {self.settings.max_report_todos} todos: too many for one report")
            async with self.db.connection() as conn:
                await report_jobs.set_progress(
                    conn, job.id, len(todos) * _FETCH_SHARE // max(expected, len(todos)), len(todos)
                )
        return todos

    async def _fail(self, conn: Connection, job_id: UUID, reason: str) -> None:
        failed = await report_jobs.fail_job(conn, job_id, reason)
        if failed is not None:
            await events.report_completed(conn, failed, None)
            log.warning("job failed", reason=reason)

    async def stop(self) -> None:
        """Take no more jobs; let the one in hand finish within the grace period."""
        self._stopping = True
        current = self._current
        if current is not None:
            done, _ = await asyncio.wait({current}, timeout=self.settings.shutdown_grace_seconds)
            if not done:
                log.warning("job still running at shutdown; it will be redelivered")


async def _settle(message: AbstractIncomingMessage, *, requeue: bool | None = None) -> None:
    """Ack (or nack with requeue); a closed channel means the broker redelivers it anyway."""
    try:
        if requeue is None:
            await message.ack()
        else:
            await message.nack(requeue=requeue)
    except Exception as error:
        log.warning("could not settle the job message; it will be redelivered", error=f"{type(error).__name__}")


class WorkerProcess(runner.Process[ReportsSettings]):
    """The worker as a process of the kit's runner: its fonts are loaded before it starts."""

    drain_delay_seconds = 0.0  # nothing routes to a worker: it stops taking jobs at once

    def __init__(self, settings: ReportsSettings) -> None:
        super().__init__(settings)
        try:
            self.fonts = load_fonts(settings)  # before taking any job: a report must not fail for a missing font
        except FontUnavailable as error:
            raise runner.CannotStart(f"reports worker cannot start: {error}") from error

    async def serve(self, until: runner.Until) -> None:
        settings = self.settings
        assert settings.database_url is not None
        await migrate(settings.database_url, MIGRATIONS, wait_seconds=settings.db_startup_timeout_seconds)
        async with contextlib.AsyncExitStack() as stack:
            db = Database(settings)
            await db.open()
            stack.push_async_callback(db.close)
            # X-Request-ID of the job's request on every call (todos, token endpoint); traceparent via tracing.
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=10), trace_configs=[request_id_trace_config()]
            )
            stack.push_async_callback(session.close)
            worker = Worker(settings, db, TodosClient(settings, session, _tokens(settings, session)), self.fonts)

            async def declare(channel: AbstractChannel) -> AbstractQueue:
                return await declare_jobs_queue(channel, settings)

            # The relay publishes the report.completed events this worker writes; the same
            # connection consumes the jobs (prefetch 1, so jobs spread over workers).
            registry = new_registry()
            bus = EventBus(settings, db, registry)
            bus.watch_queues([settings.jobs_queue])
            jobs = QueueSubscription(declare, worker.on_message, prefetch=1)
            bus.on_connect(jobs.setup)
            await bus.start()
            stack.push_async_callback(bus.stop)
            metrics = await serve_metrics(registry, settings.host, settings.worker_metrics_port)
            stack.push_async_callback(metrics.cleanup)
            log.info("worker metrics", url=f"http://{settings.host}:{_bound_port(metrics)}/metrics")
            await until()
            log.info("worker stopping")
            await jobs.cancel()
            await worker.stop()
        log.info("worker stopped")


def _tokens(settings: ReportsSettings, session: aiohttp.ClientSession) -> ClientCredentialsTokenSource:
    return ClientCredentialsTokenSource(
        settings.auth_url.rstrip("/") + "/auth/token",
        settings.worker_client_id,
        settings.reports_worker_client_secret.get_secret_value(),
        "todos:read:any",
        session,
        timeout_seconds=settings.fetch_timeout_seconds,
    )


def _bound_port(listener: web.AppRunner) -> int:
    addresses = listener.addresses
    return int(addresses[0][1]) if addresses else 0


def main() -> int:
    return runner.main(ReportsSettings, WorkerProcess, role="worker")


if __name__ == "__main__":
    sys.exit(main())
