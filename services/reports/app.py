from __future__ import annotations

import asyncio

from quart import Quart

from services.kit import events
from services.kit.app import create_service_app, kit_of
from services.kit.security import BEARER_SECURITY_SCHEME, install_auth
from services.kit.security.verifier import JwksFetcher
from services.reports.api import bp
from services.reports.config import ReportsSettings
from services.reports.events import HANDLERS
from services.reports.jobs import ensure_jobs_queue
from services.reports.migrations import MIGRATIONS
from services.reports.state import ReportsState
from services.reports.sweeper import JobSweeper


def create_app(settings: ReportsSettings, *, fetch_jwks: JwksFetcher | None = None) -> Quart:
    """The app; ``fetch_jwks`` replaces the issuer's JWKS fetch (only in-process tests pass one)."""
    app = create_service_app(
        settings,
        state=ReportsState(settings),
        blueprints=[bp],
        title="Quartet reports",
        description="Live statistics of each user's todos, and CSV / PDF / JSON reports rendered by a worker.",
        migrations=MIGRATIONS,
        security_schemes=BEARER_SECURITY_SCHEME,
    )
    install_auth(app, fetch_jwks=fetch_jwks)
    events.install(app, handlers=HANDLERS)
    kit = kit_of(app)
    kit.run_in_background("reports-jobs-queue", lambda: declare_jobs_queue_until_done(settings))
    kit.run_in_background("reports-job-sweeper", JobSweeper(settings, kit.database, kit.registry).run)
    return app


async def declare_jobs_queue_until_done(settings: ReportsSettings) -> None:
    """Until the queue exists, report.requested events are unroutable (they end in the unrouted
    queue, and the sweeper publishes them again later): keep trying while the broker is away."""
    delay = 1.0
    while not await ensure_jobs_queue(settings):
        await asyncio.sleep(delay)
        delay = min(delay * 2, 30.0)
