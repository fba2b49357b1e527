"""2,000 events through a broker restart and a SIGKILLed consumer: none lost, none doubled."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from services.kit.db import Database
from services.kit.events import outbox
from tests.events.conftest import PRODUCERS_ENV, Broker, MakeBus, scalar, wait_for
from tests.events.consumer_process import OPTIONS as CONSUMER_OPTIONS
from tests.support import AMQP_URL, ServiceProcess, unique

TOTAL = 2000
# Written while the broker is down, whatever the machine's speed: the steady writer may be done by then.
WHILE_DOWN = 100
BROKER_TIMEOUT = 60


def rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=BROKER_TIMEOUT)


async def write(db: Database, count: int, start: int, *, per_transaction: int = 10, pause: float = 0.0) -> None:
    """Write ``count`` events in small transactions, ``pause`` seconds apart."""
    for first in range(start, start + count, per_transaction):
        async with db.transaction() as conn:
            for n in range(first, min(first + per_transaction, start + count)):
                await outbox.add(conn, "thing.happened", subject="u", data={"note": str(n)})
        await asyncio.sleep(pause)


async def count(dsn: str, sql: str) -> int:
    return int(await scalar(dsn, sql))


def start_consumer(service: str, dsn: str, exchange: str, log_path: Path) -> ServiceProcess:
    proc = ServiceProcess(
        "tests.events.consumer_process",
        {
            "SERVICE_NAME": service,
            "DATABASE_URL": dsn,
            "AMQP_URL": AMQP_URL,
            "EVENTS_EXCHANGE": exchange,
            "EVENTS_PRODUCERS": PRODUCERS_ENV,
        },
        log_path,
    )
    deadline = time.monotonic() + 30
    while "consumer ready" not in proc.logs():
        if proc.proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"consumer did not start:\n{proc.logs()[-3000:]}")
        time.sleep(0.05)
    return proc


@pytest.mark.slow
async def test_2000_events_survive_a_broker_restart_and_a_killed_consumer(
    broker: Broker, database: Callable[[], Awaitable[str]], make_bus: MakeBus, tmp_path: Path
) -> None:
    producer_dsn, consumer_dsn = await database(), await database()
    await scalar(consumer_dsn, "CREATE TABLE effects (n bigserial PRIMARY KEY, event_id uuid NOT NULL, note text)")
    consumer_service = unique("consumer")
    broker.forget_service(consumer_service, CONSUMER_OPTIONS)
    _, producer_db, producer_registry = await make_bus(unique("producer"), producer_dsn)

    effects = "SELECT count(*) FROM effects"
    pending = "SELECT count(*) FROM event_outbox WHERE published_at IS NULL"
    consumers: list[ServiceProcess] = []
    broker_stopped = False
    writer: asyncio.Task[None] | None = None
    try:
        consumers.append(
            await asyncio.to_thread(
                start_consumer, consumer_service, consumer_dsn, broker.exchange_name, tmp_path / "c1.log"
            )
        )
        # A steady stream of writes, as a busy service would make, through everything below.
        writer = asyncio.create_task(write(producer_db, TOTAL - WHILE_DOWN, 0, pause=0.02))

        # 1. The consumer is SIGKILLed mid-stream, and a new process takes over.
        await wait_for(lambda: _at_least(count(consumer_dsn, effects), 300), timeout=30, what="effects before kill")
        consumers[0].signal(signal.SIGKILL)
        await asyncio.to_thread(consumers[0].proc.wait, 10)
        at_kill = await count(consumer_dsn, effects)
        await asyncio.sleep(0.3)
        consumers.append(
            await asyncio.to_thread(
                start_consumer, consumer_service, consumer_dsn, broker.exchange_name, tmp_path / "c2.log"
            )
        )

        # 2. The broker goes away and comes back; the service keeps accepting writes meanwhile.
        await wait_for(lambda: _at_least(count(consumer_dsn, effects), 900), timeout=30, what="effects before stop")
        await asyncio.to_thread(rabbitmqctl, "stop_app")
        broker_stopped = True
        written_before = await count(producer_dsn, "SELECT count(*) FROM event_outbox")
        await write(producer_db, WHILE_DOWN, TOTAL - WHILE_DOWN, pause=0.01)
        await asyncio.sleep(0.5)
        written_while_down = await count(producer_dsn, "SELECT count(*) FROM event_outbox") - written_before
        pending_while_down = await count(producer_dsn, pending)
        await asyncio.to_thread(rabbitmqctl, "start_app")
        await asyncio.to_thread(rabbitmqctl, "await_startup")
        broker_stopped = False

        await asyncio.wait_for(writer, 60)
        await wait_for(lambda: _at_least(count(consumer_dsn, effects), TOTAL), timeout=60, what="2,000 effects")
        await asyncio.sleep(1.5)  # late duplicates would show up now

        total = await count(consumer_dsn, effects)
        distinct = await count(consumer_dsn, "SELECT count(DISTINCT event_id) FROM effects")
        notes = await count(consumer_dsn, "SELECT count(DISTINCT note) FROM effects")
        outbox_rows = await count(producer_dsn, "SELECT count(*) FROM event_outbox")
        unpublished = await count(producer_dsn, "SELECT count(*) FROM event_outbox WHERE published_at IS NULL")
        inbox_rows = await count(consumer_dsn, "SELECT count(*) FROM event_inbox")
        skipped = sum(c.logs().count('"duplicate event skipped"') for c in consumers)
        confirmed = producer_registry.get_sample_value("events_published_total", {"type": "thing.happened"})
        print(
            f"\nevents written={outbox_rows} confirmed={confirmed:.0f} unpublished={unpublished} "
            f"written-while-broker-down={written_while_down} pending-while-broker-down={pending_while_down} "
            f"effects-at-kill={at_kill} effects={total} distinct-effects={distinct} distinct-notes={notes} "
            f"inbox={inbox_rows} redeliveries-skipped-by-inbox={skipped}"
        )
        assert outbox_rows == TOTAL and unpublished == 0
        assert written_while_down > 0 and pending_while_down > 0
        assert total == TOTAL, "an event was lost or its effect doubled"
        assert distinct == TOTAL and notes == TOTAL and inbox_rows == TOTAL
        assert 0 < at_kill < TOTAL
        # The second consumer lived through the broker restart: reconnected and consumed again.
        survivor = consumers[1].logs()
        assert "broker connection lost" in survivor and survivor.count('"consuming events"') >= 2
    finally:
        if writer is not None and not writer.done():
            writer.cancel()
        if broker_stopped:
            await asyncio.to_thread(rabbitmqctl, "start_app")
            await asyncio.to_thread(rabbitmqctl, "await_startup")
        for consumer in consumers:
            consumer.stop()


async def _at_least(value: Awaitable[int], minimum: int) -> bool:
    return await value >= minimum
