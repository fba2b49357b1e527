"""Queue depths as a metric: ``events_queue_messages{queue}``, refreshed every few seconds.

Each round opens a short-lived channel on the process's broker connection and
declares every watched queue passively (which reads its ready-message count and
changes nothing). A queue that does not exist closes that channel; it is skipped
and the next queue gets a fresh one. The channel is never handed to the broker's
watch list, so a missing queue cannot make the process reconnect.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import aio_pika.exceptions
from aio_pika.abc import AbstractChannel, AbstractConnection

from services.kit.events.broker import Broker
from services.kit.events.metrics import EventMetrics
from services.kit.logging import get_logger

log = get_logger(__name__)

REFRESH_SECONDS = 5.0


class QueueDepths:
    """Keeps ``events_queue_messages`` of the watched queues current while started."""

    def __init__(self, broker: Broker, metrics: EventMetrics, interval: float = REFRESH_SECONDS) -> None:
        self._metrics = metrics
        self._interval = interval
        self._queues: list[str] = []
        self._connection: AbstractConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        broker.on_connect(self._remember)

    def watch(self, queues: Sequence[str]) -> None:
        self._queues.extend(q for q in queues if q not in self._queues)

    async def _remember(self, connection: AbstractConnection) -> Sequence[AbstractChannel]:
        self._connection = connection
        return []

    async def start(self) -> None:
        if self._task is None and self._queues:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name="events-queue-depths")

    async def stop(self) -> None:
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            connection = self._connection
            if connection is not None and not connection.is_closed:
                try:
                    await self.refresh(connection)
                except Exception as exc:  # the broker went away mid-round: the next round tries again
                    log.debug("queue depths not refreshed", error=f"{type(exc).__name__}: {exc}")
            # On Python 3.11, asyncio.wait_for (inside aio-pika's declare) can swallow a cancel that
            # comes as its awaitable finishes; the loop would then sleep on and stop() wait forever.
            if self._stopping:
                return
            await asyncio.sleep(self._interval)

    async def refresh(self, connection: AbstractConnection) -> None:
        channel: AbstractChannel | None = None
        try:
            for queue in self._queues:
                if channel is None or channel.is_closed:
                    channel = await connection.channel(publisher_confirms=False)
                try:
                    declared = await channel.declare_queue(queue, passive=True, timeout=5)
                except aio_pika.exceptions.ChannelClosed:
                    continue  # not declared (yet)
                self._metrics.queue_messages.labels(queue).set(declared.declaration_result.message_count or 0)
        finally:
            if channel is not None and not channel.is_closed:
                with contextlib.suppress(Exception):
                    await channel.close()
