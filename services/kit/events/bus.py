"""EventBus: the one object a service wires up to publish (relay) and consume events."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from prometheus_client import CollectorRegistry

from services.kit.config import ServiceSettings
from services.kit.db import Database
from services.kit.events.broker import Broker, Setup, dead_letter_queue, events_queue, retry_queue
from services.kit.events.consumer import EventConsumer
from services.kit.events.depths import QueueDepths
from services.kit.events.envelope import DirectHandler, Handler
from services.kit.events.metrics import EventMetrics
from services.kit.events.options import EventOptions
from services.kit.events.relay import OutboxRelay


class EventBus:
    """The event side of a service process: outbox relay, optional consumer, broker connection.

    ``handlers`` maps event types (``"todo.created"``, or ``"todo.created@2"`` for
    another version) to coroutines run inside the transaction that records the
    event in the inbox. Without handlers the bus only relays the outbox.

    Lifecycle (in the app factory): ``await db.open()``, then ``await bus.start()``
    (returns at once; the connection is made, and remade, in the background, so the
    service starts and accepts writes while the broker is down); ``bus.ready()``
    for ``/readyz``; ``await bus.stop()`` before ``await db.close()``.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        db: Database | None,
        registry: CollectorRegistry,
        handlers: Mapping[str, Handler] | Mapping[str, DirectHandler] | None = None,
        *,
        options: EventOptions | None = None,
    ) -> None:
        self.options = options or EventOptions()
        self.metrics = EventMetrics(registry)
        self._broker = Broker(settings, self.options, self.metrics)
        self._relay = OutboxRelay(settings, db, self._broker, self.metrics, self.options) if db is not None else None
        self._consumer = (
            EventConsumer(settings, db, self._broker, self.metrics, self.options, handlers) if handlers else None
        )
        self._depths = QueueDepths(self._broker, self.metrics)
        if handlers:
            prefix = settings.events_queue_name_prefix
            retries = [retry_queue(prefix, delay) for delay in self.options.retry_delays]
            self._depths.watch([events_queue(prefix), dead_letter_queue(prefix), *retries])

    async def start(self) -> None:
        """Start the broker connection, the relay and (with handlers) the consumer."""
        await self._broker.start()
        if self._relay is not None:
            await self._relay.start()
        await self._depths.start()

    async def stop(self) -> None:
        """Graceful: stop consuming, finish in-flight handlers and the relay's batch, close."""
        if self._consumer is not None:
            await self._consumer.stop()
        if self._relay is not None:
            await self._relay.stop()
        await self._depths.stop()
        await self._broker.close()

    def ready(self) -> bool:
        """True while the broker connection is up and the consumer (if any) is attached."""
        return self._broker.ready()

    async def wait_ready(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - a bounded wait
        """Wait until :meth:`ready`; False after ``timeout`` seconds."""
        return await self._broker.wait_ready(timeout)

    def on_connect(self, setup: Setup) -> None:
        """Run ``setup`` on every broker (re)connect (a worker's queue subscription); call before :meth:`start`."""
        self._broker.on_connect(setup)

    def watch_queues(self, queues: Sequence[str]) -> None:
        """Report the depth of these queues too (``events_queue_messages``); call before :meth:`start`."""
        self._depths.watch(queues)

    def wake_relay(self) -> None:
        """Make the relay look at the outbox now (NOTIFY does this on every commit)."""
        if self._relay is not None:
            self._relay.wake()
