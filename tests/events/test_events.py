"""The event backbone against the real PostgreSQL and RabbitMQ (issue 4)."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from services.kit.db import Connection, Database
from services.kit.events import Event, EventBus, EventOptions, Handler, outbox
from services.kit.events.broker import dead_letter_queue, events_queue
from tests.commands import run_python, succeeded
from tests.events.conftest import FAST, PRODUCERS_ENV, Broker, MakeBus, scalar, wait_for
from tests.support import AMQP_URL, unique

Dsn = Callable[[], Awaitable[str]]


async def effects_table(dsn: str) -> None:
    await scalar(dsn, "CREATE TABLE effects (n bigserial PRIMARY KEY, event_id uuid NOT NULL, note text)")


async def record_effect(conn: Connection, event: Event) -> None:
    await conn.execute("INSERT INTO effects (event_id, note) VALUES ($1, $2)", event.id, event.data.get("note"))


def envelope(event_type: str = "thing.happened", **overrides: Any) -> dict[str, Any]:
    body = {
        "id": str(uuid.uuid4()),
        "type": event_type,
        "version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "tests",
        "subject": "user-1",
        "correlation_id": "req-1",
        "data": {"note": "hello"},
    }
    return body | overrides


async def effects(dsn: str) -> int:
    return int(await scalar(dsn, "SELECT count(*) FROM effects"))


def fast(**changes: Any) -> EventOptions:
    """The tests' quick options (FAST), with ``changes``."""
    return replace(FAST, **changes)


@dataclass(frozen=True)
class Running:
    """A service of the test's own on the event bus: its name, database, bus, pool and metrics."""

    service: str
    dsn: str
    bus: EventBus
    db: Database
    registry: CollectorRegistry


async def start_producer(database: Dsn, make_bus: MakeBus) -> Running:
    """A producer service of its own (the outbox relay running), on a new database."""
    dsn = await database()
    service = unique("producer")
    return Running(service, dsn, *await make_bus(service, dsn))


async def start_consumer(database: Dsn, make_bus: MakeBus, handler: Handler, options: EventOptions = FAST) -> Running:
    """A consumer service of its own handling ``thing.happened``, on a new database with an ``effects`` table."""
    dsn = await database()
    await effects_table(dsn)
    service = unique("consumer")
    return Running(service, dsn, *await make_bus(service, dsn, {"thing.happened": handler}, options))


async def publish_with_id(broker: Broker, event: dict[str, Any]) -> None:
    """Publish ``event`` as a ``thing.happened`` message whose message id is the event's id."""
    await broker.publish_raw(json.dumps(event).encode(), "thing.happened", message_id=event["id"])


async def until_dead_lettered(broker: Broker, service: str) -> None:
    await wait_for(lambda: _true(broker.count(dead_letter_queue(service))), what="the dead letter")


# --- outbox and relay --------------------------------------------------------------


async def test_rolled_back_event_is_never_published(broker: Broker, database: Dsn, make_bus: MakeBus) -> None:
    probe = await broker.probe()
    producer = await start_producer(database, make_bus)
    dsn, db = producer.dsn, producer.db

    class Boom(Exception):
        pass

    try:
        async with db.transaction() as conn:
            await outbox.add(conn, "thing.happened", subject="u1", data={"n": 1})
            raise Boom
    except Boom:
        pass
    await asyncio.sleep(1.5)  # longer than the relay's polling fallback
    assert await scalar(dsn, "SELECT count(*) FROM event_outbox") == 0
    assert await probe.get(no_ack=True, fail=False) is None


async def test_committed_event_is_published_once_with_its_envelope(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    probe = await broker.probe()
    producer = await start_producer(database, make_bus)
    service, dsn, db, registry = producer.service, producer.dsn, producer.db, producer.registry
    subject = uuid.uuid4()

    with structlog.contextvars.bound_contextvars(request_id="req-abc"):
        async with db.transaction() as conn:
            event_id = await outbox.add(
                conn, "todo.created", subject=subject, data={"at": datetime(2024, 1, 2, tzinfo=UTC)}
            )

    messages: list[Any] = []

    async def arrived() -> bool:
        if (message := await probe.get(no_ack=True, fail=False)) is not None:
            messages.append(message)
        return len(messages) >= 1

    await wait_for(arrived, what="the published event")
    await asyncio.sleep(1.2)  # nothing more arrives, even after a polling round
    assert await probe.get(no_ack=True, fail=False) is None
    [message] = messages
    event = Event.from_json(message.body)
    assert event.id == event_id
    assert (event.type, event.version, event.producer, event.subject) == ("todo.created", 1, service, str(subject))
    assert event.correlation_id == "req-abc"
    assert event.data == {"at": "2024-01-02T00:00:00+00:00"}
    assert message.routing_key == "todo.created"
    assert message.message_id == str(event_id)
    assert message.delivery_mode == 2
    assert await scalar(dsn, "SELECT published_at IS NOT NULL FROM event_outbox WHERE id = $1", event_id)
    assert registry.get_sample_value("events_published_total", {"type": "todo.created"}) == 1
    assert registry.get_sample_value("outbox_publish_seconds_count") == 1


async def test_outbox_add_refuses_to_run_outside_a_transaction(database: Dsn, make_bus: MakeBus) -> None:
    async with (await start_producer(database, make_bus)).db.connection() as conn:
        try:
            await outbox.add(conn, "thing.happened", subject="u", data={})
        except RuntimeError:
            pass
        else:
            raise AssertionError("outbox.add outside a transaction must fail")


async def test_unroutable_event_stays_in_the_outbox_until_a_queue_is_bound(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    producer = await start_producer(database, make_bus)
    dsn, registry = producer.dsn, producer.registry
    async with producer.db.transaction() as conn:
        event_id = await outbox.add(conn, "nobody.listens", subject="u", data={})

    async def returned() -> bool:
        return bool(await scalar(dsn, "SELECT attempts >= 1 FROM event_outbox WHERE id = $1", event_id))

    await wait_for(returned, what="the broker to return the unroutable event")
    row_error = await scalar(dsn, "SELECT last_error FROM event_outbox WHERE id = $1", event_id)
    assert "unroutable" in str(row_error)
    assert await scalar(dsn, "SELECT published_at FROM event_outbox WHERE id = $1", event_id) is None
    assert (registry.get_sample_value("events_publish_failed_total", {"reason": "unroutable"}) or 0) >= 1

    probe = await broker.probe("nobody.listens")  # a subscriber appears later

    async def delivered() -> bool:
        return await probe.get(no_ack=True, fail=False) is not None

    await wait_for(delivered, what="the retried event")
    await wait_for(
        lambda: _true(scalar(dsn, "SELECT published_at IS NOT NULL FROM event_outbox WHERE id = $1", event_id)),
        what="the row marked published",
    )


async def _true(value: Awaitable[object]) -> bool:
    return bool(await value)


async def test_several_relays_on_one_database_publish_each_event_once(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    dsn = await database()
    probe = await broker.probe()
    service = unique("producer")
    options = fast(relay_batch_size=20)
    (_, db, _), _, _ = (
        await make_bus(service, dsn, options=options),
        await make_bus(service, dsn, options=options),
        await make_bus(service, dsn, options=options),
    )
    written: set[uuid.UUID] = set()
    for _ in range(30):
        async with db.transaction() as conn:
            for _ in range(10):
                written.add(await outbox.add(conn, "thing.happened", subject="u", data={}))

    seen: list[str] = []

    async def all_arrived() -> bool:
        while (message := await probe.get(no_ack=True, fail=False)) is not None:
            seen.append(str(message.message_id))
        return len(seen) >= len(written)

    await wait_for(all_arrived, timeout=20, what="300 events")
    await asyncio.sleep(1.2)
    await all_arrived()
    assert len(seen) == 300
    assert set(seen) == {str(i) for i in written}


# --- consumer ----------------------------------------------------------------------


async def test_same_event_delivered_twice_has_one_effect(broker: Broker, database: Dsn, make_bus: MakeBus) -> None:
    consumer = await start_consumer(database, make_bus, record_effect)
    dsn, registry = consumer.dsn, consumer.registry
    body = json.dumps(envelope()).encode()
    await broker.publish_raw(body, "thing.happened")
    await broker.publish_raw(body, "thing.happened")

    async def both_seen() -> bool:
        consumed = registry.get_sample_value("events_consumed_total", {"type": "thing.happened"}) or 0
        duplicates = registry.get_sample_value("events_duplicate_total", {"type": "thing.happened"}) or 0
        return consumed + duplicates >= 2

    await wait_for(both_seen, what="both deliveries")
    assert await effects(dsn) == 1
    assert registry.get_sample_value("events_duplicate_total", {"type": "thing.happened"}) == 1


async def test_handler_failing_twice_then_succeeding_has_one_effect_after_the_retry_delays(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    calls: list[float] = []

    async def flaky(conn: Connection, event: Event) -> None:
        await record_effect(conn, event)  # rolled back with the failure
        calls.append(time.monotonic())
        if len(calls) <= 2:
            raise RuntimeError(f"transient failure {len(calls)}")

    consumer = await start_consumer(database, make_bus, flaky, fast(retry_delays=(0.3, 0.6, 5.0)))
    service, dsn, registry = consumer.service, consumer.dsn, consumer.registry
    await broker.publish_raw(json.dumps(envelope()).encode(), "thing.happened")

    await wait_for(lambda: _true(scalar(dsn, "SELECT count(*) FROM effects")), what="the effect")
    await asyncio.sleep(0.5)
    assert await effects(dsn) == 1
    assert len(calls) == 3
    assert calls[1] - calls[0] >= 0.3 and calls[2] - calls[1] >= 0.6
    assert registry.get_sample_value("events_failed_total", {"type": "thing.happened"}) == 2
    assert registry.get_sample_value("events_consumed_total", {"type": "thing.happened"}) == 1
    assert await broker.count(dead_letter_queue(service)) == 0


async def test_handler_that_always_fails_ends_in_the_dlq_with_its_error(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    async def broken(conn: Connection, event: Event) -> None:
        await record_effect(conn, event)
        raise ValueError("cannot handle this one")

    consumer = await start_consumer(database, make_bus, broken)
    service, dsn, registry = consumer.service, consumer.dsn, consumer.registry
    event = envelope()
    await publish_with_id(broker, event)

    await until_dead_lettered(broker, service)
    [dead] = await broker.get_all(dead_letter_queue(service))
    assert json.loads(dead.body)["id"] == event["id"]
    assert dead.headers["x-error"] == "ValueError: cannot handle this one"
    assert dead.headers["x-attempts"] == 3  # first try + 2 retries
    assert dead.headers["x-dead-letter-reason"] == "handler-failed"
    assert dead.headers["x-original-routing-key"] == "thing.happened"
    assert "x-death" not in dead.headers
    assert await effects(dsn) == 0
    assert await scalar(dsn, "SELECT count(*) FROM event_inbox") == 0
    assert registry.get_sample_value("events_dead_lettered_total", {"reason": "handler-failed"}) == 1


async def test_malformed_messages_go_to_the_dlq_at_once_and_the_consumer_keeps_going(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    # A retry would show as a 30 s stall.
    consumer = await start_consumer(database, make_bus, record_effect, fast(retry_delays=(30.0,)))
    service, dsn, registry = consumer.service, consumer.dsn, consumer.registry
    bad = [
        b"not json at all",
        b"\xff\xfe",
        json.dumps([1, 2]).encode(),
        json.dumps({k: v for k, v in envelope().items() if k != "id"}).encode(),
        json.dumps(envelope(version=7)).encode(),
        json.dumps(envelope("other.thing")).encode(),
        json.dumps(envelope(version="1")).encode(),
    ]
    started = time.monotonic()
    for body in bad:
        await broker.publish_raw(body, "thing.happened")
    await broker.publish_raw(json.dumps(envelope()).encode(), "thing.happened")

    async def all_dead() -> bool:
        return await broker.count(dead_letter_queue(service)) == len(bad)

    await wait_for(all_dead, timeout=5, what="every malformed message in the DLQ")
    assert time.monotonic() - started < 5
    await wait_for(lambda: _true(scalar(dsn, "SELECT count(*) FROM effects")), what="the good event")
    dead = await broker.get_all(dead_letter_queue(service))
    reasons = sorted(str(m.headers["x-dead-letter-reason"]) for m in dead)
    assert reasons == ["malformed"] * 5 + ["unknown-type"] * 2
    assert all(m.headers["x-error"] for m in dead)
    assert await broker.count(events_queue(service)) == 0
    assert registry.get_sample_value("events_dead_lettered_total", {"reason": "malformed"}) == 5


async def test_correlation_id_is_carried_into_the_consumer_log_context(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    producer_dsn, consumer_dsn = await database(), await database()
    seen: list[dict[str, Any]] = []

    async def remember(conn: Connection, event: Event) -> None:
        seen.append(dict(structlog.contextvars.get_contextvars()) | {"correlation_id": event.correlation_id})

    await make_bus(unique("consumer"), consumer_dsn, {"todo.created": remember})
    _, db, _ = await make_bus(unique("producer"), producer_dsn)
    with structlog.contextvars.bound_contextvars(request_id="req-from-http"):
        async with db.transaction() as conn:
            await outbox.add(conn, "todo.created", subject="u", data={})

    await wait_for(lambda: _true(asyncio.sleep(0, len(seen))), what="the handler")
    assert seen[0]["request_id"] == "req-from-http"
    assert seen[0]["correlation_id"] == "req-from-http"
    assert seen[0]["event_type"] == "todo.created"


async def test_stop_lets_the_in_flight_handler_finish_and_acks_it(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    started = asyncio.Event()

    async def slow(conn: Connection, event: Event) -> None:
        started.set()
        await asyncio.sleep(0.7)
        await record_effect(conn, event)

    consumer = await start_consumer(database, make_bus, slow)
    service, dsn, bus = consumer.service, consumer.dsn, consumer.bus
    await broker.publish_raw(json.dumps(envelope()).encode(), "thing.happened")
    await asyncio.wait_for(started.wait(), 10)
    await bus.stop()
    assert not bus.ready()
    assert await effects(dsn) == 1
    assert await broker.count(events_queue(service)) == 0  # acked, not redelivered


async def test_dlq_command_lists_and_replays_dead_letters(broker: Broker, database: Dsn, make_bus: MakeBus) -> None:
    healthy = False

    async def until_fixed(conn: Connection, event: Event) -> None:
        if not healthy:
            raise RuntimeError("downstream is broken")
        await record_effect(conn, event)

    consumer = await start_consumer(database, make_bus, until_fixed)
    service, dsn = consumer.service, consumer.dsn
    event = envelope()
    await publish_with_id(broker, event)
    await until_dead_lettered(broker, service)

    def cli(*args: str) -> list[dict[str, Any]]:
        env = {"AMQP_URL": AMQP_URL, "EVENTS_EXCHANGE": broker.exchange_name, "EVENTS_PRODUCERS": PRODUCERS_ENV}
        done = run_python("-m", "services.kit.events", "dlq", "--service", service, *args, env=env, timeout=30)
        return [json.loads(line) for line in succeeded(done).splitlines()]

    listed = await asyncio.to_thread(cli)
    assert listed[0]["message_id"] == event["id"]
    assert listed[0]["error"] == "RuntimeError: downstream is broken"
    assert listed[0]["attempts"] == 3
    assert listed[0]["body"]["id"] == event["id"]
    assert listed[-1] == {"service": service, "dead_letters": 1}
    await wait_for(lambda: _true(broker.count(dead_letter_queue(service))), what="the listed message to stay")

    healthy = True
    replayed = await asyncio.to_thread(cli, "--replay")
    assert replayed[-1] == {"service": service, "replayed": 1}
    await wait_for(lambda: _true(scalar(dsn, "SELECT count(*) FROM effects")), what="the replayed effect")
    assert await broker.count(dead_letter_queue(service)) == 0

    missing = run_python(
        "-m", "services.kit.events", "dlq", "--service", unique("nobody"), env={"AMQP_URL": AMQP_URL}, timeout=30
    )
    assert missing.returncode == 2 and "no queue" in missing.stderr


async def test_bus_starts_and_accepts_writes_while_the_broker_is_unreachable(database: Dsn) -> None:
    from prometheus_client import CollectorRegistry

    from services.kit.config import ServiceSettings
    from services.kit.db import Database
    from services.kit.events import EventBus
    from tests.support import free_port

    dsn = await database()
    settings = ServiceSettings(
        service_name=unique("producer"), database_url=dsn, amqp_url=f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    )
    db = Database(settings)
    await db.open()
    registry = CollectorRegistry()
    bus = EventBus(settings, db, registry, options=FAST)
    await bus.start()
    try:
        async with db.transaction() as conn:
            await outbox.add(conn, "thing.happened", subject="u", data={})
        assert not await bus.wait_ready(1.5)
        assert registry.get_sample_value("outbox_pending") == 1
        assert registry.get_sample_value("events_broker_connected") == 0
    finally:
        await bus.stop()
        await db.close()


async def test_handler_that_hangs_is_timed_out_and_retried_like_a_failure(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    dsn = await database()
    calls = 0

    async def hangs(conn: Connection, event: Event) -> None:
        nonlocal calls
        calls += 1
        await asyncio.sleep(60)

    service = unique("consumer")
    await make_bus(service, dsn, {"thing.happened": hangs}, fast(handler_timeout=0.2, retry_delays=(0.1,)))
    await broker.publish_raw(json.dumps(envelope()).encode(), "thing.happened")
    await until_dead_lettered(broker, service)
    [dead] = await broker.get_all(dead_letter_queue(service))
    assert str(dead.headers["x-error"]).startswith("TimeoutError")
    assert calls == 2


async def test_relay_polls_for_rows_written_without_a_notify(broker: Broker, database: Dsn, make_bus: MakeBus) -> None:
    probe = await broker.probe()
    dsn = (await start_producer(database, make_bus)).dsn
    await scalar(
        dsn,
        """
        INSERT INTO event_outbox (id, type, version, occurred_at, subject, data)
        VALUES (gen_random_uuid(), 'thing.happened', 1, now(), 'u', '{}')
        """,
    )  # no NOTIFY: only the polling fallback (1 s here) can find it

    async def arrived() -> bool:
        return await probe.get(no_ack=True, fail=False) is not None

    await wait_for(arrived, timeout=5, what="the polled event")


async def test_published_outbox_rows_and_old_inbox_rows_are_pruned_after_the_retention(
    broker: Broker, database: Dsn, make_bus: MakeBus
) -> None:
    dsn = await database()
    await effects_table(dsn)
    options = fast(retention=0.5, prune_interval=0.2, relay_poll_interval=0.2)
    _, db, _ = await make_bus(unique("service"), dsn, {"thing.happened": record_effect}, options)
    async with db.transaction() as conn:
        await outbox.add(conn, "thing.happened", subject="u", data={})
    await wait_for(lambda: _true(scalar(dsn, "SELECT count(*) FROM effects")), what="the effect")
    assert await scalar(dsn, "SELECT count(*) FROM event_inbox") == 1

    async def pruned() -> bool:
        outbox_rows = await scalar(dsn, "SELECT count(*) FROM event_outbox")
        inbox_rows = await scalar(dsn, "SELECT count(*) FROM event_inbox")
        return bool(outbox_rows == 0 and inbox_rows == 0)

    await wait_for(pruned, timeout=5, what="pruning")
    assert await effects(dsn) == 1
