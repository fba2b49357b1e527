from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from quart import Quart

from services.kit import events
from services.kit.app import ServiceKit, create_service_app, kit_of
from services.kit.config import ServiceSettings
from services.kit.migrations import MigrationSource
from services.kit.security import BEARER_SECURITY_SCHEME, install_auth
from services.kit.security.verifier import JwksFetcher
from services.reports.api import bp
from services.reports.config import ReportsSettings
from services.reports.events import HANDLERS
from services.reports.jobs import ensure_jobs_queue
from services.reports.sweeper import JobSweeper

MIGRATIONS = [events.MIGRATIONS, MigrationSource("reports", Path(__file__).parent / "migrations")]


def create_app(settings: ServiceSettings, *, fetch_jwks: JwksFetcher | None = None) -> Quart:
    """The app; ``fetch_jwks`` replaces the issuer's JWKS fetch (only in-process tests pass one)."""
    assert isinstance(settings, ReportsSettings)
    app = create_service_app(
        settings,
        blueprints=[bp],
        title="Quartet reports",
        description="Live statistics of each user's todos, and CSV / PDF / JSON reports rendered by a worker.",
        migrations=MIGRATIONS,
        security_schemes=BEARER_SECURITY_SCHEME,
    )
    install_auth(app, fetch_jwks=fetch_jwks)
    events.install(app, handlers=HANDLERS)

    async def declare_jobs_queue(kit: ServiceKit) -> None:
        # Until the queue exists, report.requested events are unroutable (they end in the unrouted
        # queue, and the sweeper publishes them again later): keep trying while the broker is away.
        async def until_declared() -> None:
            delay = 1.0
            while not await ensure_jobs_queue(settings):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

        kit.extras["jobs_queue_task"] = asyncio.create_task(until_declared())
        sweeper = kit.extras["job_sweeper"] = JobSweeper(settings, kit.database, kit.registry)
        sweeper.start()

    async def stop_declaring(kit: ServiceKit) -> None:
        sweeper = kit.extras.pop("job_sweeper", None)
        if isinstance(sweeper, JobSweeper):
            await sweeper.stop()
        task = kit.extras.pop("jobs_queue_task", None)
        if isinstance(task, asyncio.Task):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    kit_of(app).on_start.append(declare_jobs_queue)
    kit_of(app).on_stop.append(stop_declaring)
    return app
