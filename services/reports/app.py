from __future__ import annotations

from pathlib import Path

from quart import Quart

from services.kit import events
from services.kit.app import ServiceKit, create_service_app, kit_of
from services.kit.config import ServiceSettings
from services.kit.migrations import MigrationSource
from services.kit.security import BEARER_SECURITY_SCHEME, install_auth
from services.reports.api import bp
from services.reports.config import ReportsSettings
from services.reports.events import HANDLERS
from services.reports.jobs import ensure_jobs_queue

MIGRATIONS = [events.MIGRATIONS, MigrationSource("reports", Path(__file__).parent / "migrations")]


def create_app(settings: ServiceSettings) -> Quart:
    assert isinstance(settings, ReportsSettings)
    app = create_service_app(
        settings,
        blueprints=[bp],
        title="Quartet reports",
        description="Live statistics of each user's todos, and CSV / PDF / JSON reports rendered by a worker.",
        migrations=MIGRATIONS,
        security_schemes=BEARER_SECURITY_SCHEME,
    )
    install_auth(app)
    events.install(app, handlers=HANDLERS)

    async def declare_jobs_queue(kit: ServiceKit) -> None:
        await ensure_jobs_queue(settings)

    kit_of(app).on_start.append(declare_jobs_queue)
    return app
