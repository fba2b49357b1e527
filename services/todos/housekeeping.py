"""Background upkeep of the todos database: expired idempotency records are deleted."""

from __future__ import annotations

import asyncio
import contextlib

from services.kit.app import ServiceKit
from services.kit.db import UNAVAILABLE_ERRORS
from services.kit.logging import get_logger
from services.todos import store
from services.todos.config import TodosSettings

log = get_logger("todos.housekeeping")
TASK_KEY = "todos_housekeeping"
_UNAVAILABLE: tuple[type[Exception], ...] = (*UNAVAILABLE_ERRORS, TimeoutError)


async def prune_forever(kit: ServiceKit, settings: TodosSettings) -> None:
    while True:
        try:
            async with kit.database.transaction() as conn:
                pruned = await store.prune_idempotency_keys(conn, settings.idempotency_ttl_hours)
            if pruned:
                log.info("expired idempotency keys pruned", count=pruned)
        except _UNAVAILABLE as error:
            log.warning("pruning skipped: database unavailable", error_type=type(error).__name__)
        await asyncio.sleep(settings.housekeeping_interval_seconds)


async def start(kit: ServiceKit) -> None:
    settings = kit.settings
    assert isinstance(settings, TodosSettings)
    kit.extras[TASK_KEY] = asyncio.create_task(prune_forever(kit, settings))


async def stop(kit: ServiceKit) -> None:
    task = kit.extras.pop(TASK_KEY, None)
    if isinstance(task, asyncio.Task):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
