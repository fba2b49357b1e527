from __future__ import annotations

from pathlib import Path

from quart import Quart

from services.kit import events
from services.kit.app import create_service_app, kit_of
from services.kit.config import ServiceSettings
from services.kit.migrations import MigrationSource
from services.kit.security import BEARER_SECURITY_SCHEME, install_auth
from services.kit.security.verifier import JwksFetcher
from services.todos import housekeeping
from services.todos.api import bp
from services.todos.events import HANDLERS

MIGRATIONS = [events.MIGRATIONS, MigrationSource("todos", Path(__file__).parent / "migrations")]


def create_app(settings: ServiceSettings, *, fetch_jwks: JwksFetcher | None = None) -> Quart:
    """The app; ``fetch_jwks`` replaces the issuer's JWKS fetch (only in-process tests pass one)."""
    app = create_service_app(
        settings,
        blueprints=[bp],
        title="Quartet todos",
        description="Each user's todo list. Owner is the access token's subject.",
        migrations=MIGRATIONS,
        security_schemes=BEARER_SECURITY_SCHEME,
    )
    install_auth(app, fetch_jwks=fetch_jwks)
    events.install(app, handlers=HANDLERS)
    kit = kit_of(app)
    kit.on_start.append(housekeeping.start)
    kit.on_stop.append(housekeeping.stop)
    return app
