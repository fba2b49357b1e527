from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aio_pika
import httpx

from tests.factories import TestIssuer
from tests.inprocess import InProcessService
from tests.suite import Suite, User


async def collect(queue: aio_pika.abc.AbstractQueue, count: int, timeout: float = 20.0) -> list[dict[str, Any]]:
    """Take ``count`` messages (and wait a little for any extra that should not be there)."""
    got: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while len(got) < count and asyncio.get_running_loop().time() < deadline:
        message = await queue.get(no_ack=True, fail=False)
        if message is None:
            await asyncio.sleep(0.1)
            continue
        got.append(json.loads(message.body))
    await asyncio.sleep(0.5)
    while (extra := await queue.get(no_ack=True, fail=False)) is not None:
        got.append(json.loads(extra.body))
    return got


async def test_each_change_emits_exactly_one_event_with_the_envelope(
    todos: InProcessService, issuer: TestIssuer
) -> None:
    new_user = issuer.user()
    connection = await aio_pika.connect(todos.settings.amqp_url)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.get_exchange(todos.settings.events_exchange)
        queue = await channel.declare_queue(f"test.todos.{uuid.uuid4().hex}", exclusive=True, auto_delete=True)
        await queue.bind(exchange, routing_key="todo.#")
        rid = f"rid-{uuid.uuid4().hex}"
        async with todos.client(new_user) as api:
            todo = (await api.post("/todos", json={"content": "evented"}, headers={"X-Request-ID": rid})).json()
            await api.patch(f"/todos/{todo['id']}", json={"content": "evented 2"})
            await api.put(f"/todos/{todo['id']}/finish")
            await api.put(f"/todos/{todo['id']}/finish")  # no change, no event
            await api.delete(f"/todos/{todo['id']}")
            await api.post("/todos", json={"content": ""})  # rejected, no event
        events = [e for e in await collect(queue, 4) if e["subject"] == new_user.id]
    assert [e["type"] for e in events] == ["todo.created", "todo.updated", "todo.finished", "todo.deleted"]
    created = events[0]
    assert created["version"] == 1 and created["producer"] == "todos"
    assert created["correlation_id"] == rid
    assert created["data"]["id"] == todo["id"] and created["data"]["content"] == "evented"
    uuid.UUID(created["id"])
    assert created["occurred_at"]
    assert len({e["id"] for e in events}) == 4


async def test_user_deleted_event_purges_their_todos(suite: Suite, new_user: User, alice: User) -> None:
    async with suite.client(new_user) as api:
        for i in range(3):
            await api.post("/todos", json={"content": f"doomed {i}"}, headers={"Idempotency-Key": f"k{i}"})
    async with suite.client(alice) as a:
        kept = (await a.post("/todos", json={"content": "survivor"})).json()
    await suite.delete_account(new_user)
    token = await suite.service_token("todos:read:any")
    async with httpx.AsyncClient(base_url=suite.todos_url, headers={"Authorization": f"Bearer {token}"}) as svc:
        deadline = asyncio.get_running_loop().time() + 60  # eventually; a loaded machine may be slow
        while True:
            items = (await svc.get("/todos", params={"owner": new_user.id})).json()["items"]
            if not items or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert items == []
        alice_items = (await svc.get("/todos", params={"owner": alice.id, "limit": 100})).json()["items"]
        assert kept["id"] in {t["id"] for t in alice_items}


async def test_a_deleted_accounts_live_token_cannot_create_todos_again(suite: Suite, new_user: User) -> None:
    async with suite.client(new_user) as api:
        await api.post("/todos", json={"content": "before"})
    await suite.delete_account(new_user)
    async with suite.client(new_user) as api:  # the access token is still valid for minutes
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            resp = await api.post("/todos", json={"content": "after deletion"})
            if resp.status_code == 403 or asyncio.get_running_loop().time() > deadline:
                break
            await asyncio.sleep(0.2)
        assert resp.status_code == 403, resp.text
        assert resp.headers["content-type"].startswith("application/problem+json")
        keyed = await api.post("/todos", json={"content": "again"}, headers={"Idempotency-Key": "late"})
        assert keyed.status_code == 403
    token = await suite.service_token("todos:read:any")
    async with httpx.AsyncClient(base_url=suite.todos_url, headers={"Authorization": f"Bearer {token}"}) as svc:
        assert (await svc.get("/todos", params={"owner": new_user.id})).json()["items"] == []
