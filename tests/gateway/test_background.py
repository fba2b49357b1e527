"""gateway.background: a task that lives exactly as long as the ``async with`` body."""

from __future__ import annotations

import asyncio

from gateway.background import background_task


async def test_the_task_runs_during_the_body_and_is_cancelled_and_awaited_after() -> None:
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async with background_task(work()) as task:
        await asyncio.wait_for(started.wait(), 1)
        assert not task.done()
    assert task.done() and cancelled.is_set()
