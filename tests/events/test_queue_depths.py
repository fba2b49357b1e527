"""The queue-depth refresher (services/kit/events/depths.py) stops when told, whatever its round does."""

from __future__ import annotations

import asyncio
import contextlib

import aio_pika
from aio_pika.abc import AbstractConnection
from prometheus_client import CollectorRegistry

from services.kit.config import ServiceSettings
from services.kit.events.broker import Broker
from services.kit.events.depths import QueueDepths
from services.kit.events.metrics import EventMetrics
from services.kit.events.options import EventOptions
from tests.support import AMQP_URL, unique


class CancelSwallowingRound(QueueDepths):
    """A round that loses the cancel, as Python 3.11's ``asyncio.wait_for`` inside aio-pika's
    declare does when the cancel comes just as the declare finishes."""

    rounds = 0

    async def refresh(self, connection: AbstractConnection) -> None:
        self.rounds += 1
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.3)


async def test_stop_ends_the_refresher_even_when_a_round_swallowed_the_cancel() -> None:
    settings = ServiceSettings(amqp_url=AMQP_URL, events_exchange=unique("test.events"))
    broker = Broker(settings, EventOptions(), EventMetrics(CollectorRegistry()))
    depths = CancelSwallowingRound(broker, EventMetrics(CollectorRegistry()), interval=3600)
    depths.watch(["some.queue"])
    connection = await aio_pika.connect(AMQP_URL)
    try:
        await depths._remember(connection)  # what the broker does on connecting
        await depths.start()
        await asyncio.sleep(0.1)  # inside its first round
        task = depths._task
        assert task is not None
        await asyncio.wait({asyncio.ensure_future(depths.stop())}, timeout=5)
        assert task.done()  # ended after its round, not asleep for the hour
        assert depths.rounds == 1
    finally:
        await connection.close()
