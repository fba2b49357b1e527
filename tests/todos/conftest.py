from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.todos.app import MIGRATIONS, create_app
from services.todos.config import TodosSettings
from tests.factories import TestIssuer
from tests.inprocess import InProcessService, migrated_database, serve, settings_for


@pytest.fixture(scope="module")
async def todos(issuer: TestIssuer) -> AsyncIterator[InProcessService]:
    """Todos in this process with a throwaway database, shared by a module (each test brings its own users)."""
    async with migrated_database(MIGRATIONS) as dsn:
        app = create_app(settings_for(TodosSettings, dsn), fetch_jwks=issuer.fetch_jwks)
        async with serve(app, issuer) as service:
            yield service
