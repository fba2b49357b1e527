"""Events nobody consumes go to the alternate exchange ``<exchange>.unrouted`` (set by a RabbitMQ policy).

The test's exchange is unique, and so is the policy (it matches only that
exchange); both are removed afterwards. The policy is set the way ``make up``
sets it: ``scripts/broker_policy.py`` through rabbitmqctl.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import replace
from urllib.parse import urlsplit

import aio_pika
import aiormq.exceptions
import pytest
from structlog.testing import capture_logs

from scripts.suite import broker as suite_broker
from services.kit.events import outbox, unrouted_name
from tests.events.conftest import FAST, Broker, MakeBus, scalar, wait_for
from tests.support import AMQP_URL, ROOT, unique


def policy(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "scripts.broker_policy", *args], cwd=ROOT, check=True, capture_output=True, timeout=60
    )


@pytest.fixture
def unrouted_policy(broker: Broker) -> Iterator[str]:
    policy("--exchange", broker.exchange_name)
    try:
        yield unrouted_name(broker.exchange_name)
    finally:
        policy("--exchange", broker.exchange_name, "--remove")


async def test_event_nobody_consumes_is_kept_in_the_unrouted_queue_and_marked_sent_without_warnings(
    broker: Broker,
    database: Callable[[], Awaitable[str]],
    make_bus: MakeBus,
    unrouted_policy: str,
) -> None:
    dsn = await database()
    with capture_logs() as logs:
        _, db, registry = await make_bus(unique("producer"), dsn, options=FAST)
        async with db.transaction() as conn:
            ids = [await outbox.add(conn, "nobody.listens", subject="u", data={"n": n}) for n in range(3)]

        async def all_sent() -> bool:
            sent = await scalar(dsn, "SELECT count(*) FROM event_outbox WHERE published_at IS NOT NULL")
            return bool(sent == len(ids))

        await wait_for(all_sent, what="the outbox rows marked sent")
    kept = await broker.get_all(unrouted_policy)
    unrouted_failures = registry.get_sample_value("events_publish_failed_total", {"reason": "unroutable"}) or 0
    warnings = [entry for entry in logs if entry.get("log_level") == "warning"]
    attempts = await scalar(dsn, "SELECT max(attempts) FROM event_outbox")
    print(
        f"\nunrouted: events={len(ids)} kept-in-{unrouted_policy}={len(kept)} outbox-attempts-max={attempts} "
        f"unroutable-returns={unrouted_failures:.0f} warnings={len(warnings)}"
    )
    assert sorted(m.message_id or "" for m in kept) == sorted(str(i) for i in ids)
    assert {m.routing_key for m in kept} == {"nobody.listens"}
    assert attempts == 0 and unrouted_failures == 0
    assert not warnings, warnings


async def test_a_least_permission_service_declares_the_alternate_but_cannot_read_what_it_keeps(
    broker: Broker,
    database: Callable[[], Awaitable[str]],
    make_bus: MakeBus,
    unrouted_policy: str,
) -> None:
    # An auth-like user (publishes user.*, consumes nothing) with the suite's permissions on this exchange.
    name = unique("test_auth")
    password = suite_broker.new_password()
    role = replace(suite_broker.ROLES["auth"], user=name)
    perms = suite_broker.permissions(role, broker.exchange_name, queue_prefix=name)
    suite_broker.put_user(name, password, perms, broker.exchange_name, exists=False)
    where = urlsplit(AMQP_URL)
    url = f"amqp://{name}:{password}@{where.hostname}:{where.port or 5672}/"
    try:
        dsn = await database()
        _, db, _ = await make_bus(name, dsn, amqp_url=url, producers={"user": name})
        async with db.transaction() as conn:
            event_id = await outbox.add(conn, "user.noticed", subject="u", data={})

        async def sent() -> bool:
            return bool(await scalar(dsn, "SELECT published_at IS NOT NULL FROM event_outbox WHERE id = $1", event_id))

        await wait_for(sent, what="the outbox row marked sent")
        connection = await aio_pika.connect(url, timeout=10)
        try:
            channel = await connection.channel()
            with pytest.raises(aiormq.exceptions.ChannelAccessRefused):
                queue = await channel.get_queue(unrouted_policy, ensure=False)
                await queue.get(no_ack=False, fail=False)
        finally:
            await connection.close()
        kept = await broker.get_all(unrouted_policy)
        assert [m.message_id for m in kept] == [str(event_id)]
    finally:
        suite_broker.delete_user(name)
