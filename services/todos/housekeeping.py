"""Background upkeep of the todos database: expired idempotency records are deleted."""

from __future__ import annotations

import asyncio

from services.kit.db import UNAVAILABLE_ERRORS, Database
from services.kit.logging import get_logger
from services.todos import store
from services.todos.config import TodosSettings

log = get_logger("todos.housekeeping")
_UNAVAILABLE: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, TimeoutError)


async def prune_forever(db: Database, settings: TodosSettings) -> None:
    """Delete expired idempotency records every ``housekeeping_interval_seconds`` (the app's background task)."""
    while True:
        try:
            async with db.transaction() as conn:
                pruned = await store.prune_idempotency_keys(conn, settings.idempotency_ttl_hours)
            if pruned:
                log.info("expired idempotency keys pruned", count=pruned)
        except _UNAVAILABLE as error:
            log.warning("pruning skipped: database unavailable", error_type=type(error).__name__)
        await asyncio.sleep(settings.housekeeping_interval_seconds)
