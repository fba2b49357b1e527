"""Fixtures for the event tests: throwaway databases, unique broker names, buses, probes.

Every test gets its own exchange and service names (so its queues), and deletes
them afterwards; databases are created per test and dropped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiormq.exceptions
import asyncpg
import pytest
from aio_pika.abc import AbstractChannel, AbstractQueue
from prometheus_client import CollectorRegistry

from services.kit.config import ServiceSettings
from services.kit.db import Database
from services.kit.events import MIGRATIONS, EventBus, EventOptions, Handler
from services.kit.events.broker import (
    alternate_exchange_name,
    dead_letter_queue,
    events_queue,
    retry_queue,
    unrouted_name,
)
from services.kit.migrations import migrate
from tests.support import AMQP_URL, TEST_BROKER_USER, create_database, drop_database, unique

# Short delays so the whole module runs in seconds.
FAST = EventOptions(
    retry_delays=(0.2, 0.4),
    relay_poll_interval=1.0,
    publish_retry_min=0.2,
    publish_retry_max=1.0,
    reconnect_min=0.1,
    reconnect_max=1.0,
    db_unavailable_pause=0.2,
    shutdown_grace=5.0,
)

# The test broker user owns every type these tests use; tests/events/test_producers.py checks ownership.
PRODUCERS = {prefix: TEST_BROKER_USER for prefix in ("thing", "todo", "other", "nobody")}
PRODUCERS_ENV = json.dumps(PRODUCERS)


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@dataclass
class Broker:
    """The test's own view of RabbitMQ: probes, raw publishing, and cleanup."""

    connection: aio_pika.abc.AbstractConnection
    channel: AbstractChannel
    exchange_name: str
    queues: set[str] = field(default_factory=set)

    async def exchange(self) -> aio_pika.abc.AbstractExchange:
        return await self.channel.declare_exchange(self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True)

    async def probe(self, routing_key: str = "#") -> AbstractQueue:
        """A queue that sees every event published on the test's exchange."""
        name = unique("probe")
        self.queues.add(name)
        queue = await self.channel.declare_queue(name, durable=False, auto_delete=False)
        await queue.bind(await self.exchange(), routing_key=routing_key)
        return queue

    async def publish_raw(self, body: bytes, routing_key: str, **properties: object) -> None:
        """Publish as the test broker user (its ``user_id`` set, as the relay does, unless given)."""
        properties.setdefault("user_id", TEST_BROKER_USER)
        exchange = await self.exchange()
        await exchange.publish(aio_pika.Message(body=body, **properties), routing_key=routing_key)  # type: ignore[arg-type]

    async def count(self, queue: str) -> int:
        declared = await self.channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)

    async def get_all(self, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
        declared = await self.channel.declare_queue(queue, passive=True)
        messages = []
        while (message := await declared.get(no_ack=True, fail=False)) is not None:
            messages.append(message)
        return messages

    def forget_service(self, service: str, options: EventOptions) -> None:
        self.queues.update(
            {events_queue(service), dead_letter_queue(service)}
            | {retry_queue(service, delay) for delay in options.retry_delays}
        )


@pytest.fixture
async def broker() -> AsyncIterator[Broker]:
    connection = await aio_pika.connect(AMQP_URL, timeout=10)
    channel = await connection.channel()
    state = Broker(connection, channel, unique("test.events"))
    try:
        yield state
    finally:
        with contextlib.suppress(Exception):
            await connection.close()
        await _delete_everything(state)


async def _delete_everything(state: Broker) -> None:
    # A fresh connection: the test's own may have died with a broker restart.
    connection = await aio_pika.connect(AMQP_URL, timeout=30)
    try:
        for queue in sorted(state.queues | {unrouted_name(state.exchange_name)}):  # the kit declares .unrouted
            channel = await connection.channel()
            with contextlib.suppress(aiormq.exceptions.ChannelClosed, aiormq.exceptions.ChannelInvalidStateError):
                await channel.queue_delete(queue)
                await channel.close()
        channel = await connection.channel()
        await channel.exchange_delete(state.exchange_name)
        await channel.exchange_delete(alternate_exchange_name(state.exchange_name))
        await channel.close()
    finally:
        await connection.close()


@pytest.fixture
async def database() -> AsyncIterator[Callable[[], Awaitable[str]]]:
    """A factory of migrated throwaway databases; returns their DSNs."""
    names: list[str] = []

    async def make() -> str:
        name, dsn = await create_database()
        names.append(name)
        await migrate(dsn, [MIGRATIONS])
        return dsn

    try:
        yield make
    finally:
        for name in names:
            await drop_database(name)


MakeBus = Callable[..., Awaitable[tuple[EventBus, Database, CollectorRegistry]]]


@pytest.fixture
async def make_bus(broker: Broker) -> AsyncIterator[MakeBus]:
    """Start an EventBus for ``service`` on ``dsn`` (stopped at the end of the test)."""
    started: list[tuple[EventBus, Database]] = []

    async def make(
        service: str,
        dsn: str,
        handlers: Mapping[str, Handler] | None = None,
        options: EventOptions = FAST,
        *,
        wait: bool = True,
        amqp_url: str = AMQP_URL,
        producers: Mapping[str, str] = PRODUCERS,
    ) -> tuple[EventBus, Database, CollectorRegistry]:
        settings = ServiceSettings(
            service_name=service,
            database_url=dsn,
            amqp_url=amqp_url,
            events_exchange=broker.exchange_name,
            events_producers=dict(producers),
        )
        db = Database(settings)
        await db.open()
        registry = CollectorRegistry()
        bus = EventBus(settings, db, registry, handlers, options=options)
        broker.forget_service(service, options)
        started.append((bus, db))
        await bus.start()
        if wait:
            assert await bus.wait_ready(10), "event bus did not connect"
        return bus, db, registry

    try:
        yield make
    finally:
        for bus, db in reversed(started):
            await bus.stop()
            await db.close()


async def scalar(dsn: str, sql: str, *args: object) -> Any:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchval(sql, *args)
    finally:
        await conn.close()
