"""Named background tasks of one app: started while it starts, cancelled and awaited when it stops.

::

    kit.tasks.start("auth-janitor", lambda: janitor(db))   # inside a start hook
    kit.run_in_background("todos-housekeeping", work)      # or: start it with the app

A task that raises is logged at once with its name (never lost with the task object).
On stop, the app cancels its tasks newest first and waits for each, at most
``shutdown_grace_seconds``, before its stop hooks run and its pool closes, so no task
outlives the resources it uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from services.kit.logging import get_logger

log = get_logger("kit.tasks")

Work = Callable[[], Coroutine[Any, Any, None]]


class BackgroundTasks:
    """The running background tasks of an app, by name, in the order they started."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, name: str, work: Work) -> asyncio.Task[None]:
        """Run ``work()`` as the task ``name`` (one live task per name) until it ends or the app stops."""
        running = self._tasks.get(name)
        if running is not None and not running.done():
            raise RuntimeError(f"background task {name!r} is already running")
        self._tasks.pop(name, None)  # a finished one: the new task takes its name, newest in order
        task = asyncio.create_task(work(), name=name)
        task.add_done_callback(_report_crash)
        self._tasks[name] = task
        return task

    def names(self) -> list[str]:
        """The names of the tasks still running, oldest first."""
        return [name for name, task in self._tasks.items() if not task.done()]

    async def stop(self, timeout: float) -> None:  # noqa: ASYNC109
        """Cancel every task, newest first, and wait up to ``timeout`` seconds for each to end."""
        tasks, self._tasks = self._tasks, {}
        for name, task in reversed(tasks.items()):
            task.cancel()
            _, pending = await asyncio.wait({task}, timeout=timeout)
            if pending:
                log.error("background task did not stop in time", task=name, timeout_seconds=timeout)


def _report_crash(task: asyncio.Task[None]) -> None:
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("background task crashed", task=task.get_name(), exc_info=error)
