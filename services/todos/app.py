from __future__ import annotations

from pathlib import Path

from quart import Quart

from services.kit import events
from services.kit.app import create_service_app, kit_of
from services.kit.migrations import MigrationSource
from services.kit.security import BEARER_SECURITY_SCHEME, install_auth
from services.kit.security.verifier import JwksFetcher
from services.todos.api import bp
from services.todos.config import TodosSettings
from services.todos.events import handlers
from services.todos.housekeeping import prune_forever
from services.todos.state import TodosState

MIGRATIONS = [events.MIGRATIONS, MigrationSource("todos", Path(__file__).parent / "migrations")]


def create_app(settings: TodosSettings, *, fetch_jwks: JwksFetcher | None = None) -> Quart:
    """The app; ``fetch_jwks`` replaces the issuer's JWKS fetch (only in-process tests pass one)."""
    state = TodosState.build(settings)
    app = create_service_app(
        settings,
        state=state,
        blueprints=[bp],
        title="Quartet todos",
        description="Each user's todo list. Owner is the access token's subject.",
        migrations=MIGRATIONS,
        security_schemes=BEARER_SECURITY_SCHEME,
    )
    install_auth(app, fetch_jwks=fetch_jwks)
    events.install(app, handlers=handlers(state.pages))
    kit = kit_of(app)
    state.pages.register(kit.registry)
    kit.on_stop.append(lambda _: state.pages.close())
    if state.pages.enabled:
        kit.run_in_background("todos-page-cache-flush", state.pages.flush_forever)
    kit.run_in_background("todos-housekeeping", lambda: prune_forever(kit.database, settings))
    return app
