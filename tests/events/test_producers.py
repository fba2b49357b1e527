"""Only an event type's owner can make consumers act on it (issue 15, "authorised events").

Against the real broker with broker users of this module's own (unique names, the
permissions of scripts/suite/broker.py, deleted at the end), and the todos service's
real ``user.deleted`` handler on a throwaway todos database.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aio_pika
import aiormq.exceptions
import pytest

from scripts.suite import broker as suite_broker
from services.kit.events.broker import dead_letter_queue, events_queue
from services.kit.events.consumer import ERROR_HEADER, REASON_HEADER
from services.kit.migrations import migrate
from services.todos import store
from services.todos.app import MIGRATIONS as TODOS_MIGRATIONS
from services.todos.events import HANDLERS as TODOS_HANDLERS
from tests.events.conftest import Broker, MakeBus, _delete_everything, scalar, wait_for
from tests.support import AMQP_URL

Dsn = Any


@dataclass(frozen=True)
class BrokerUser:
    name: str
    password: str

    @property
    def url(self) -> str:
        where = urlsplit(AMQP_URL)
        return f"amqp://{self.name}:{self.password}@{where.hostname}:{where.port or 5672}/"


@dataclass(frozen=True)
class Users:
    exchange: str
    auth: BrokerUser
    todos: BrokerUser
    reports: BrokerUser

    @property
    def producers(self) -> dict[str, str]:
        return {"user": self.auth.name, "todo": self.todos.name, "report": self.reports.name}


@pytest.fixture(scope="module")
def users() -> Iterator[Users]:
    """auth-, todos- and reports-like users with the suite's permissions on a unique exchange.

    Each user's queues are named after it (``<user>.events``...), so a bus runs as
    ``service_name=<user>``.
    """
    tag = uuid.uuid4().hex[:10]
    exchange = f"test.producers_{tag}"
    made: dict[str, BrokerUser] = {}
    try:
        for service in ("auth", "todos", "reports"):
            user = BrokerUser(f"test_{service}_{tag}", suite_broker.new_password())
            role = replace(suite_broker.ROLES[service], user=user.name)
            perms = suite_broker.permissions(role, exchange, queue_prefix=user.name)
            suite_broker.put_user(user.name, user.password, perms, exchange, exists=False)
            made[service] = user
        yield Users(exchange, made["auth"], made["todos"], made["reports"])
    finally:
        for user in made.values():
            suite_broker.delete_user(user.name)


@pytest.fixture
async def broker(users: Users) -> AsyncIterator[Broker]:
    """The conftest's broker probe, on the exchange the users' topic permissions name."""
    connection = await aio_pika.connect(AMQP_URL, timeout=10)
    state = Broker(connection, await connection.channel(), users.exchange)
    try:
        yield state
    finally:
        await connection.close()
        await _delete_everything(state)


def user_deleted(owner: uuid.UUID) -> bytes:
    """A well-formed ``user.deleted`` event, exactly as auth writes it (a fresh event id)."""
    now = datetime.now(UTC).isoformat()
    return json.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": "user.deleted",
            "version": 1,
            "occurred_at": now,
            "producer": "auth",
            "subject": str(owner),
            "correlation_id": "req-forged",
            "data": {"user_id": str(owner), "deleted_at": now},
        }
    ).encode()


async def publish_as(url: str, body: bytes, routing_key: str, *, exchange: str | None, user_id: str | None) -> None:
    """Publish with confirms as the user of ``url`` (``exchange=None``: the default exchange)."""
    connection = await aio_pika.connect(url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True)
        target = channel.default_exchange if exchange is None else await channel.get_exchange(exchange, ensure=False)
        message = aio_pika.Message(body, user_id=user_id, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await target.publish(message, routing_key=routing_key, timeout=10)
    finally:
        await connection.close()


async def todos_service(make_bus: MakeBus, database: Dsn, users: Users) -> tuple[str, Any, uuid.UUID]:
    """The todos consumer (real handler) running as the todos user, and an owner with two todos."""
    dsn = await database()
    await migrate(dsn, TODOS_MIGRATIONS)
    _, db, registry = await make_bus(
        users.todos.name, dsn, TODOS_HANDLERS, amqp_url=users.todos.url, producers=users.producers
    )
    owner = uuid.uuid4()
    async with db.transaction() as conn:
        await store.create_todo(conn, owner, "keep me", max_todos=10)
        await store.create_todo(conn, owner, "and me", max_todos=10)
    return dsn, registry, owner


async def count_todos(dsn: str, owner: uuid.UUID) -> int:
    return int(await scalar(dsn, "SELECT count(*) FROM todos WHERE owner_id = $1", owner))


async def test_user_deleted_from_anyone_but_auth_is_dead_lettered_and_from_auth_purges(
    broker: Broker, database: Dsn, make_bus: MakeBus, users: Users
) -> None:
    dsn, registry, owner = await todos_service(make_bus, database, users)
    assert await count_todos(dsn, owner) == 2
    queue, dlq = events_queue(users.todos.name), dead_letter_queue(users.todos.name)
    guest = AMQP_URL
    forged = [
        # guest has no topic permissions: the broker routes its user.deleted to todos.
        (guest, users.exchange, "user.deleted", "guest"),
        (guest, users.exchange, "user.deleted", None),  # no user_id at all
        # Another service's user cannot publish user.* on the exchange (topic permission),
        # but may write to the default exchange: straight into todos' queue.
        (users.reports.url, None, queue, users.reports.name),
        (users.todos.url, None, queue, users.todos.name),
        # auth's own credentials, but without the user_id that proves it.
        (users.auth.url, users.exchange, "user.deleted", None),
    ]
    for url, exchange, routing_key, user_id in forged:
        await publish_as(url, user_deleted(owner), routing_key, exchange=exchange, user_id=user_id)

    await wait_for(lambda: _is(broker.count(dlq), len(forged)), what="every forged event in the DLQ")
    assert await count_todos(dsn, owner) == 2
    letters = await broker.get_all(dlq)
    assert {m.headers[REASON_HEADER] for m in letters} == {"unauthorised-producer"}
    errors = sorted(str(m.headers[ERROR_HEADER]) for m in letters)
    assert all(f"broker user {users.auth.name!r}" in e for e in errors), errors
    assert sum("carries no validated user_id" in e for e in errors) == 2
    assert any("not 'guest'" in e for e in errors) and any(f"not {users.reports.name!r}" in e for e in errors)
    assert registry.get_sample_value("events_dead_lettered_total", {"reason": "unauthorised-producer"}) == 5

    await publish_as(
        users.auth.url, user_deleted(owner), "user.deleted", exchange=users.exchange, user_id=users.auth.name
    )
    await wait_for(lambda: _is(count_todos(dsn, owner), 0), what="auth's user.deleted to purge the todos")
    assert await broker.count(dlq) == 0


async def test_the_broker_refuses_user_deleted_from_todos_on_the_exchange(
    broker: Broker, database: Dsn, make_bus: MakeBus, users: Users
) -> None:
    dsn, _, owner = await todos_service(make_bus, database, users)
    with pytest.raises(aiormq.exceptions.ChannelAccessRefused, match=r"access to topic .user\.deleted."):
        await publish_as(
            users.todos.url, user_deleted(owner), "user.deleted", exchange=users.exchange, user_id=users.todos.name
        )
    # Nor may a user claim to be another: RabbitMQ checks user_id against the login.
    with pytest.raises(aiormq.exceptions.ChannelPreconditionFailed, match="user_id property set to"):
        await publish_as(
            users.todos.url,
            user_deleted(owner),
            events_queue(users.todos.name),
            exchange=None,
            user_id=users.auth.name,
        )
    # Its own todo.* events todos may publish (no queue is bound to todo.created here).
    await publish_as(users.todos.url, b"{}", "todo.created", exchange=users.exchange, user_id=users.todos.name)
    assert await broker.count(events_queue(users.todos.name)) == 0
    assert await count_todos(dsn, owner) == 2


async def test_the_type_in_the_body_decides_not_the_routing_key(
    broker: Broker, database: Dsn, make_bus: MakeBus, users: Users
) -> None:
    """todos may publish routing key todo.*; a user.deleted body under it still is not todos' to send."""
    _, _, owner = await todos_service(make_bus, database, users)
    reports_dsn = await database()
    await make_bus(
        users.reports.name,
        reports_dsn,
        {"todo.created": _nothing, "user.deleted": _nothing},
        amqp_url=users.reports.url,
        producers=users.producers,
    )
    await publish_as(
        users.todos.url, user_deleted(owner), "todo.created", exchange=users.exchange, user_id=users.todos.name
    )
    dlq = dead_letter_queue(users.reports.name)
    await wait_for(lambda: _is(broker.count(dlq), 1), what="the disguised event in the reports DLQ")
    [letter] = await broker.get_all(dlq)
    assert letter.headers[REASON_HEADER] == "unauthorised-producer"
    assert f"not {users.todos.name!r}" in str(letter.headers[ERROR_HEADER])
    assert await scalar(reports_dsn, "SELECT count(*) FROM event_inbox") == 0


async def _nothing(*_: object) -> None:
    return None


async def _is(value: Any, expected: object) -> bool:
    return bool(await value == expected)
