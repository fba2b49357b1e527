"""The process's AMQP connection: names, topology, and reconnecting with backoff.

One connection per process, supervised by a task: connect, open the publishing
channel, declare the events exchange (and its alternate exchange), run every
registered setup (the consumer declares its queues and starts consuming there; a
worker's :class:`QueueSubscription` does the same for its work queue),
then wait until the connection or any of its channels closes, and start over
after a growing pause. So after a broker restart the exchange, queues, bindings
and consumers are all declared afresh. Publications that fail meanwhile stay in the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
)

from services.kit.config import ServiceSettings
from services.kit.events.metrics import EventMetrics
from services.kit.events.options import EventOptions
from services.kit.logging import get_logger

log = get_logger(__name__)

# Run on every (re)connect; returns the channels it opened, which are watched too.
Setup = Callable[[AbstractConnection], Awaitable[Sequence[AbstractChannel]]]


def events_queue(service: str) -> str:
    """The durable queue a service consumes: ``<service>.events``."""
    return f"{service}.events"


def copy_message(message: AbstractIncomingMessage, headers: dict[str, Any], user_id: str) -> aio_pika.Message:
    """A persistent copy of a delivered message with new ``headers`` (for retry queues and DLQ replays).

    ``user_id`` must be the publishing connection's own broker user (RabbitMQ checks it);
    the original producer travels in ``headers`` (see :mod:`services.kit.events.producers`).
    """
    return aio_pika.Message(
        body=message.body,
        headers=headers,
        content_type=message.content_type,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=message.message_id,
        correlation_id=message.correlation_id,
        type=message.type,
        app_id=message.app_id,
        timestamp=message.timestamp,
        user_id=user_id,
    )


def dead_letter_queue(service: str) -> str:
    return f"{service}.events.dlq"


def retry_queue(service: str, delay: float) -> str:
    """The TTL queue that holds a failed message ``delay`` seconds, then hands it back.

    The delay is in the name, so changing the configured delays declares new queues
    instead of clashing with the ``x-message-ttl`` of existing ones.
    """
    return f"{service}.events.retry.{round(delay * 1000)}ms"


class BrokerUnavailable(RuntimeError):
    """The broker connection is down; try again after it is back."""


async def declare_exchange(channel: AbstractChannel, name: str) -> AbstractExchange:
    return await channel.declare_exchange(name, aio_pika.ExchangeType.TOPIC, durable=True)


def alternate_exchange_name(exchange: str) -> str:
    """The alternate exchange of ``exchange``: ``<exchange>.alternate`` (fanout)."""
    return f"{exchange}.alternate"


def unrouted_name(exchange: str) -> str:
    """The queue that keeps the events ``exchange`` could not route: ``<exchange>.unrouted``."""
    return f"{exchange}.unrouted"


async def declare_unrouted(channel: AbstractChannel, exchange: str) -> None:
    """Declare ``<exchange>.alternate`` (a durable fanout exchange) and the durable queue ``<exchange>.unrouted``.

    Two names, so a service's broker user may bind the queue (read on the
    exchange, write on the queue) without being allowed to read the queue.

    A RabbitMQ *policy* makes it the events exchange's alternate exchange (an
    argument cannot be added to an existing durable exchange): see
    ``scripts/broker_policy.py``. With the policy, an event no queue is bound to
    is kept here (countable, inspectable) and confirmed, instead of returned to
    the relay; without it, this exchange simply receives nothing.
    """
    alternate = await channel.declare_exchange(
        alternate_exchange_name(exchange), aio_pika.ExchangeType.FANOUT, durable=True
    )
    queue = await channel.declare_queue(unrouted_name(exchange), durable=True)
    await queue.bind(alternate)


class Broker:
    """A supervised connection to RabbitMQ with a confirming channel for publishing."""

    def __init__(self, settings: ServiceSettings, options: EventOptions, metrics: EventMetrics) -> None:
        self._url = settings.amqp_url
        self._exchange_name = settings.events_exchange
        self._connection_name = f"{settings.service_name}:{settings.instance}"
        self._options = options
        self._metrics = metrics
        self._setups: list[Setup] = []
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._connected = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def exchange_name(self) -> str:
        return self._exchange_name

    def on_connect(self, setup: Setup) -> None:
        """Run ``setup`` on every connection, before the broker counts as ready."""
        self._setups.append(setup)

    def ready(self) -> bool:
        return self._connected.is_set()

    async def wait_ready(self, timeout: float | None = None) -> bool:  # noqa: ASYNC109 - a bounded wait
        """Wait until connected (and every setup done); False on timeout."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout)
        except TimeoutError:
            return False
        return True

    @property
    def exchange(self) -> AbstractExchange:
        """The events exchange on the confirming channel (mandatory returns raise)."""
        if self._exchange is None or not self._connected.is_set():
            raise BrokerUnavailable("not connected to the broker")
        return self._exchange

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name="events-broker")

    async def close(self) -> None:
        """Close the connection and stop reconnecting."""
        self._closing.set()
        self._connected.clear()
        connection = self._connection
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=5)
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        self._metrics.broker_connected.set(0)

    async def _supervise(self) -> None:
        delay = self._options.reconnect_min
        while not self._closing.is_set():
            lost = asyncio.Event()
            try:
                await self._connect(lost)
            except Exception as exc:
                log.warning("broker connection failed", error=f"{type(exc).__name__}: {exc}", retry_in=delay)
            else:
                delay = self._options.reconnect_min
                log.info("broker connected", exchange=self._exchange_name)
                await wait_first(lost.wait(), self._closing.wait())
                if not self._closing.is_set():
                    log.warning("broker connection lost", retry_in=delay)
            self._connected.clear()
            self._exchange = None
            self._metrics.broker_connected.set(0)
            if self._closing.is_set():
                return
            await self._drop_connection()
            await wait_first(self._closing.wait(), timeout=delay)
            delay = min(delay * 2, self._options.reconnect_max)

    async def _connect(self, lost: asyncio.Event) -> None:
        def on_close(*_: Any) -> None:
            lost.set()

        connection = await aio_pika.connect(
            self._url,
            timeout=self._options.connect_timeout,
            client_properties={"connection_name": self._connection_name},
        )
        self._connection = connection
        connection.close_callbacks.add(on_close)
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        channel.close_callbacks.add(on_close)
        exchange = await declare_exchange(channel, self._exchange_name)
        await declare_unrouted(channel, self._exchange_name)
        for setup in self._setups:
            for opened in await setup(connection):
                opened.close_callbacks.add(on_close)
        if lost.is_set():
            raise BrokerUnavailable("connection closed during setup")
        self._exchange = exchange
        self._connected.set()
        self._metrics.broker_connected.set(1)

    async def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=5)


class QueueSubscription:
    """Consume one queue on the broker's connection: declared and consumed afresh on every (re)connect.

    Register :meth:`setup` with ``on_connect`` (of the :class:`Broker` or the event
    bus) before starting it. ``declare`` declares the queue (and its bindings) on the
    channel; ``on_message`` gets every delivery, with at most ``prefetch`` unacked.
    """

    def __init__(
        self,
        declare: Callable[[AbstractChannel], Awaitable[AbstractQueue]],
        on_message: Callable[[AbstractIncomingMessage], Awaitable[Any]],
        *,
        prefetch: int,
    ) -> None:
        self._declare = declare
        self._on_message = on_message
        self._prefetch = prefetch
        self._queue: AbstractQueue | None = None
        self._tag: str | None = None
        self._cancelled = False

    async def setup(self, connection: AbstractConnection) -> Sequence[AbstractChannel]:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await self._declare(channel)
        if not self._cancelled:
            self._queue, self._tag = queue, await queue.consume(self._on_message)
            log.info("consuming", queue=queue.name)
        return [channel]

    async def cancel(self) -> None:
        """Take no more deliveries (messages delivered meanwhile are the handler's to give back)."""
        self._cancelled = True
        queue, tag, self._tag = self._queue, self._tag, None
        if queue is not None and tag is not None:
            with contextlib.suppress(Exception):
                await queue.cancel(tag, timeout=5)


async def wait_first(*awaitables: Awaitable[Any], timeout: float | None = None) -> None:  # noqa: ASYNC109
    """Wait until the first of ``awaitables`` finishes (at most ``timeout``); cancel the rest."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
