"""Waiting for the suite to catch up: events are applied after the answer (at-least-once, eventually)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class TimedOut(Exception):
    """What was awaited did not happen in time."""


async def until(
    what: str,
    check: Callable[[], Awaitable[T | None]],
    *,
    seconds: float,
    interval: float = 0.3,
    error: Callable[[str], Exception] = TimedOut,
) -> T:
    """Call ``check()`` until it returns something truthy and return it; ``error(message)`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise error(f"timed out after {seconds:.0f} s waiting for {what}")
        await asyncio.sleep(interval)
