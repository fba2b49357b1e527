"""The first-page cache (docs/caching.md) against the machine's real Redis and PostgreSQL.

Two todos apps share one database and one key prefix (unique per module, so this runs
beside a `make up` suite): every instance of a deployment, each with its own Redis pool,
breaker and in-process single flight. The Redis outage tests start a private
``redis-server`` on a free port and stop only that one.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import httpx
import pytest
import redis.asyncio as redis

from services.kit.app import kit_of
from services.todos.app import MIGRATIONS, create_app
from services.todos.config import TodosSettings
from services.todos.demo_data import seed_demo
from tests.factories import TestIssuer, User
from tests.inprocess import InProcessService, migrated_database, serve, settings_for
from tests.support import TEST_BROKER_USER, drop_keys, free_port, private_redis, unique

SHARED_REDIS = "redis://127.0.0.1:6379/0"


def metric(service: InProcessService, name: str, **labels: str) -> float:
    return kit_of(service.app).registry.get_sample_value(name, labels) or 0.0


def total(services: list[InProcessService], name: str, **labels: str) -> float:
    return sum(metric(s, name, **labels) for s in services)


@dataclass
class Instances:
    """Two todos apps on one database and one Redis key prefix."""

    a: InProcessService
    b: InProcessService
    prefix: str
    dsn: str

    @property
    def both(self) -> list[InProcessService]:
        return [self.a, self.b]


async def start_instances(
    stack: AsyncExitStack, issuer: TestIssuer, redis_url: str, count: int = 2, **overrides: Any
) -> tuple[list[InProcessService], str, str]:
    dsn = await stack.enter_async_context(migrated_database(MIGRATIONS))
    prefix = unique("test_cache") + ":"
    services = []
    for _ in range(count):
        settings = settings_for(
            TodosSettings, dsn, cache_redis_url=redis_url, cache_key_prefix=prefix, db_pool_max=8, **overrides
        )
        services.append(
            await stack.enter_async_context(serve(create_app(settings, fetch_jwks=issuer.fetch_jwks), issuer))
        )
    return services, prefix, dsn


@pytest.fixture(scope="module")
async def pair(issuer: TestIssuer) -> AsyncIterator[Instances]:
    async with AsyncExitStack() as stack:
        # Both instances share this test's one event loop, so a burst lags it twice as much as it
        # would a real instance: a longer Redis timeout keeps loop lag from tripping the breaker.
        (a, b), prefix, dsn = await start_instances(stack, issuer, SHARED_REDIS, cache_timeout_seconds=2.0)
        try:
            yield Instances(a, b, prefix, dsn)
        finally:
            await drop_keys(SHARED_REDIS, prefix)


# --------------------------------------------------------------------------- behaviour


async def test_a_second_read_is_a_hit_with_an_etag_and_304(pair: Instances, issuer: TestIssuer) -> None:
    user = issuer.user()
    async with pair.a.client(user) as a, pair.b.client(user) as b:
        await a.post("/todos", json={"content": "cached"})
        hits = total(pair.both, "page_cache_hits_total")
        first = await a.get("/todos")
        second = await b.get("/todos")
        assert first.status_code == second.status_code == 200
        assert first.content == second.content and [t["content"] for t in first.json()["items"]] == ["cached"]
        assert total(pair.both, "page_cache_hits_total") == hits + 1
        assert first.headers["etag"] == second.headers["etag"]
        assert first.headers["cache-control"] == "private, no-cache"
        again = await b.get("/todos", headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == first.headers["etag"]
        await a.post("/todos", json={"content": "changed"})
        changed = await b.get("/todos", headers={"If-None-Match": first.headers["etag"]})
        assert changed.status_code == 200 and changed.headers["etag"] != first.headers["etag"]


async def test_pages_are_per_user_status_and_limit(pair: Instances, issuer: TestIssuer) -> None:
    alice, bob = issuer.user(), issuer.user()
    async with pair.a.client(alice) as a, pair.b.client(bob) as b:
        for i in range(3):
            await a.post("/todos", json={"content": f"alice {i}"})
        await b.post("/todos", json={"content": "bob 0"})
        todo = (await a.get("/todos", params={"limit": 1})).json()["items"][0]
        await a.put(f"/todos/{todo['id']}/finish")
        for _ in range(2):  # the second round comes from the cache
            assert [t["content"] for t in (await a.get("/todos")).json()["items"]] == ["alice 2", "alice 1", "alice 0"]
            assert [t["content"] for t in (await a.get("/todos", params={"limit": 2})).json()["items"]] == [
                "alice 2",
                "alice 1",
            ]
            assert [t["content"] for t in (await a.get("/todos", params={"status": "finished"})).json()["items"]] == [
                "alice 2"
            ]
            assert [t["content"] for t in (await b.get("/todos")).json()["items"]] == ["bob 0"]


async def test_a_page_after_a_cursor_is_not_cached_but_has_an_etag(pair: Instances, issuer: TestIssuer) -> None:
    user = issuer.user()
    async with pair.a.client(user) as a:
        for i in range(3):
            await a.post("/todos", json={"content": f"t{i}"})
        cursor = (await a.get("/todos", params={"limit": 2})).json()["next_cursor"]
        hits, misses = metric(pair.a, "page_cache_hits_total"), metric(pair.a, "page_cache_misses_total")
        page = await a.get("/todos", params={"limit": 2, "cursor": cursor})
        again = await a.get(
            "/todos", params={"limit": 2, "cursor": cursor}, headers={"If-None-Match": page.headers["etag"]}
        )
        assert [t["content"] for t in page.json()["items"]] == ["t0"] and again.status_code == 304
        assert metric(pair.a, "page_cache_hits_total") == hits  # never looked up
        assert metric(pair.a, "page_cache_misses_total") == misses


async def test_a_deleted_account_has_nothing_cached(pair: Instances, issuer: TestIssuer) -> None:
    user = issuer.user()
    async with pair.a.client(user) as a:
        await a.post("/todos", json={"content": "soon gone"})
        await a.get("/todos")
        await a.get("/todos", params={"status": "open"})
        client = redis.Redis.from_url(SHARED_REDIS)
        try:
            assert [k async for k in client.scan_iter(match=f"{pair.prefix}p:{user.id}:*")]
            await publish_user_deleted(pair.a, user.id)
            deadline = time.monotonic() + 20
            while (await a.get("/todos")).json()["items"] and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            assert (await a.get("/todos")).json()["items"] == []
            assert (await a.get("/todos", params={"status": "open"})).json()["items"] == []
            assert [k async for k in client.scan_iter(match=f"{pair.prefix}p:{user.id}:*")] == []
            assert await client.get(f"{pair.prefix}v:{user.id}") == b"gone"
        finally:
            await client.aclose()


async def publish_user_deleted(service: InProcessService, owner: str) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())
    body = {
        "id": str(uuid.uuid4()),
        "type": "user.deleted",
        "version": 1,
        "occurred_at": now,
        "producer": "auth",
        "subject": owner,
        "correlation_id": "test-cache",
        "data": {"user_id": owner, "deleted_at": now},
    }
    connection = await aio_pika.connect(service.settings.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(service.settings.events_exchange, ensure=False)
        message = aio_pika.Message(json.dumps(body).encode(), user_id=TEST_BROKER_USER)
        await exchange.publish(message, routing_key="user.deleted", timeout=10)


async def test_the_demo_seed_command_invalidates(pair: Instances, issuer: TestIssuer) -> None:
    user = issuer.user()
    async with pair.b.client(user) as b:
        assert (await b.get("/todos")).json()["items"] == []  # an empty page, cached
        settings = settings_for(TodosSettings, pair.dsn, cache_redis_url=SHARED_REDIS, cache_key_prefix=pair.prefix)
        assert await seed_demo(settings, ["--owner", user.id, "--count", "3"]) == 0
        assert len((await b.get("/todos")).json()["items"]) == 3


# ------------------------------------------------------------------------- must show


async def test_200_concurrent_cold_reads_of_one_page_make_one_query(pair: Instances, issuer: TestIssuer) -> None:
    user = issuer.user()
    async with pair.a.client(user) as a, pair.b.client(user) as b:
        await a.post("/todos", json={"content": "popular"})  # the write leaves the page cold
        loads = total(pair.both, "page_cache_loads_total")
        waits = total(pair.both, "page_cache_stampede_waits_total")
        reads = await asyncio.gather(*(api.get("/todos") for _ in range(100) for api in (a, b)))
        made = total(pair.both, "page_cache_loads_total") - loads
        print(
            f"\n200 concurrent cold reads over 2 instances: {made:.0f} query, "
            f"{total(pair.both, 'page_cache_stampede_waits_total') - waits:.0f} stampede waits, "
            f"{total(pair.both, 'page_cache_bypasses_total', reason='error'):.0f} bypassed on errors"
        )
        assert {r.status_code for r in reads} == {200}
        assert {r.content for r in reads} == {reads[0].content}
        assert made == 1


@dataclass
class Model:
    """What one user's list is after each acknowledged write: (content, is_finished), newest first."""

    user: User
    states: list[tuple[tuple[str, bool], ...]] = field(default_factory=lambda: [()])
    acked: int = 0  # index of the last acknowledged state
    in_flight: tuple[tuple[str, bool], ...] | None = None
    ids: dict[str, str] = field(default_factory=dict)  # content -> id


def page_of(state: tuple[tuple[str, bool], ...], status: str, limit: int) -> tuple[tuple[str, bool], ...]:
    chosen = [t for t in state if status == "all" or t[1] == (status == "finished")]
    return tuple(chosen[:limit])


VARIANTS = [("all", 100), ("all", 3), ("open", 100), ("finished", 100)]


@dataclass
class Tally:
    reads: int = 0
    stale: int = 0
    foreign: int = 0
    own_reads: int = 0
    errors: list[str] = field(default_factory=list)


def check(model: Model, since: int, body: dict[str, Any], status: str, limit: int, tally: Tally) -> None:
    seen = tuple((t["content"], t["is_finished"]) for t in body["items"])
    if any(not content.startswith(model.user.id) for content, _ in seen):
        tally.foreign += 1
        return
    allowed = {page_of(s, status, limit) for s in model.states[since:]}
    if model.in_flight is not None:
        allowed.add(page_of(model.in_flight, status, limit))
    if seen not in allowed:
        tally.stale += 1
        if len(tally.errors) < 5:
            tally.errors.append(f"{status}:{limit} saw {seen}, allowed {allowed}")


async def writer(model: Model, clients: list[httpx.AsyncClient], stop: asyncio.Event, tally: Tally) -> None:
    rng = random.Random(model.user.id)
    n = 0
    while not stop.is_set():
        state = list(model.states[model.acked])
        api = rng.choice(clients)
        n += 1
        ops = (
            ["create"]
            if not state
            else ["create", "edit", "finish", "delete"]
            if len(state) < 8
            else ["edit", "finish", "delete"]
        )
        op = rng.choice(ops)
        if op == "create":
            content = f"{model.user.id} c{n}"
            new = [(content, False), *state]
        else:
            i = rng.randrange(len(state))
            old, finished = state[i]
            if op == "finish" and finished:
                op = "edit"
            new = list(state)
            if op == "edit":
                content = f"{model.user.id} c{n}e"
                new[i] = (content, finished)
            elif op == "finish":
                new[i] = (old, True)
            else:
                del new[i]
        model.in_flight = tuple(new)
        if op == "create":
            resp = await api.post("/todos", json={"content": content})
            assert resp.status_code == 201, resp.text
            model.ids[content] = resp.json()["id"]
        elif op == "edit":
            resp = await api.patch(f"/todos/{model.ids[old]}", json={"content": content})
            assert resp.status_code == 200, resp.text
            model.ids[content] = model.ids.pop(old)
        elif op == "finish":
            resp = await api.put(f"/todos/{model.ids[old]}/finish")
            assert resp.status_code == 200, resp.text
        else:
            resp = await api.delete(f"/todos/{model.ids.pop(old)}")
            assert resp.status_code == 204, resp.text
        model.states.append(tuple(new))
        model.acked = len(model.states) - 1
        model.in_flight = None
        # Read-your-writes: the writer's next read, on the other instance, shows its write.
        other = clients[1 - clients.index(api)]
        status, limit = rng.choice(VARIANTS)
        body = (await other.get("/todos", params={"status": status, "limit": limit})).json()
        tally.own_reads += 1
        tally.reads += 1
        check(model, model.acked, body, status, limit, tally)
        await asyncio.sleep(rng.uniform(0, 0.02))


async def reader(models: list[Model], clients: list[list[httpx.AsyncClient]], goal: int, tally: Tally) -> None:
    rng = random.Random()
    while tally.reads < goal:
        k = rng.randrange(len(models))
        model, api = models[k], rng.choice(clients[k])
        status, limit = rng.choice(VARIANTS)
        since = model.acked
        resp = await api.get("/todos", params={"status": status, "limit": limit})
        if resp.status_code != 200:
            tally.errors.append(f"read {resp.status_code}")
            tally.stale += 1
            continue
        tally.reads += 1
        check(model, since, resp.json(), status, limit, tally)


async def test_two_instances_never_serve_a_stale_or_foreign_page(pair: Instances, issuer: TestIssuer) -> None:
    models = [Model(issuer.user()) for _ in range(4)]
    tally = Tally()
    stop = asyncio.Event()
    hits = total(pair.both, "page_cache_hits_total")
    async with AsyncExitStack() as stack:
        clients = [[await stack.enter_async_context(s.client(m.user)) for s in pair.both] for m in models]
        writers = [asyncio.create_task(writer(m, c, stop, tally)) for m, c in zip(models, clients, strict=True)]
        await asyncio.gather(*(reader(models, clients, 10_000, tally) for _ in range(8)))
        stop.set()
        await asyncio.gather(*writers)
    writes = sum(len(m.states) - 1 for m in models)
    hit_count = total(pair.both, "page_cache_hits_total") - hits
    print(
        f"\n2 instances, 4 users: {tally.reads} reads ({tally.own_reads} right after the reader's own write), "
        f"{writes} acknowledged writes, {hit_count:.0f} cache hits: {tally.stale} stale, {tally.foreign} foreign"
    )
    assert tally.reads >= 10_000
    assert tally.stale == 0, tally.errors
    assert tally.foreign == 0
    assert writes >= 100 and hit_count > 1000  # the cache was really in play


# ----------------------------------------------------------------------- Redis outage


async def read_loop(api: httpx.AsyncClient, expected: list[str], stop: asyncio.Event, failures: list[str]) -> int:
    reads = 0
    while not stop.is_set():
        resp = await api.get("/todos")
        reads += 1
        if resp.status_code != 200:
            failures.append(f"{resp.status_code} {resp.text[:200]}")
        elif [t["content"] for t in resp.json()["items"]] != expected:
            failures.append(f"wrong page {resp.text[:200]}")
        await asyncio.sleep(0)
    return reads


async def test_redis_stopped_under_load_fails_no_read_and_is_used_again_once_back(issuer: TestIssuer) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    user = issuer.user()
    async with AsyncExitStack() as stack:
        server = stack.enter_context(private_redis(port))
        (service,), _, _ = await start_instances(
            stack, issuer, url, count=1, cache_retry_after_seconds=0.5, cache_timeout_seconds=0.3
        )
        api = await stack.enter_async_context(service.client(user))
        await api.post("/todos", json={"content": "steady"})
        stop, failures = asyncio.Event(), list[str]()
        loops = [asyncio.create_task(read_loop(api, ["steady"], stop, failures)) for _ in range(8)]
        await asyncio.sleep(1)
        hits_before = metric(service, "page_cache_hits_total")
        server.terminate()
        server.wait(10)
        stopped_at = metric(service, "page_cache_bypasses_total", reason="unavailable") + metric(
            service, "page_cache_bypasses_total", reason="error"
        )
        await asyncio.sleep(3)
        bypassed = (
            metric(service, "page_cache_bypasses_total", reason="unavailable")
            + metric(service, "page_cache_bypasses_total", reason="error")
            - stopped_at
        )
        hits_down = metric(service, "page_cache_hits_total")
        server = stack.enter_context(private_redis(port))
        # Used again without a restart of todos: within the breaker's retry and a reconnect, bounded.
        deadline = time.monotonic() + 20
        while metric(service, "page_cache_hits_total") - hits_down <= 100 and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        stop.set()
        reads = sum(await asyncio.gather(*loops))
        hits_after = metric(service, "page_cache_hits_total")
        print(
            f"\nRedis stopped for 3 s under {reads} reads: {len(failures)} failed, {bypassed:.0f} bypassed; "
            f"hits before {hits_before:.0f}, while down {hits_down - hits_before:.0f}, after restart "
            f"{hits_after - hits_down:.0f}"
        )
        assert failures == []
        assert bypassed > 100
        assert hits_after - hits_down > 100  # used again without a restart of todos
        assert metric(service, "page_cache_breaker_open") == 0


async def test_a_write_while_redis_hangs_is_not_hidden_by_the_old_page_once_it_answers(issuer: TestIssuer) -> None:
    """Redis paused (SIGSTOP keeps its data): the lost invalidation is sent before any old page is served."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    user = issuer.user()
    async with AsyncExitStack() as stack:
        server = stack.enter_context(private_redis(port))
        (a, b), _, _ = await start_instances(
            stack, issuer, url, cache_retry_after_seconds=0.5, cache_timeout_seconds=0.3
        )
        api_a = await stack.enter_async_context(a.client(user))
        api_b = await stack.enter_async_context(b.client(user))
        await api_a.post("/todos", json={"content": "before"})
        for api in (api_a, api_b, api_b):  # cached, then hits on both instances
            assert [t["content"] for t in (await api.get("/todos")).json()["items"]] == ["before"]
        server.send_signal(signal.SIGSTOP)  # as slow as it gets, data kept
        try:
            started = time.monotonic()
            created = await api_a.post("/todos", json={"content": "during"})
            reads = [await api.get("/todos") for api in (api_a, api_b)]
            slow = time.monotonic() - started
        finally:
            server.send_signal(signal.SIGCONT)
        assert created.status_code == 201 and slow < 2
        assert all([t["content"] for t in r.json()["items"]] == ["during", "before"] for r in reads)
        seen = []
        deadline = time.monotonic() + 3  # through the breakers' retry, the flush and the settling delay
        while time.monotonic() < deadline:
            for api in (api_b, api_a):
                seen.append([t["content"] for t in (await api.get("/todos")).json()["items"]])
            await asyncio.sleep(0.01)
        assert all(page == ["during", "before"] for page in seen), [p for p in seen if p != ["during", "before"]][:3]
        hits = metric(a, "page_cache_hits_total") + metric(b, "page_cache_hits_total")
        for api in (api_a, api_b):
            await api.get("/todos")
        assert metric(a, "page_cache_hits_total") + metric(b, "page_cache_hits_total") == hits + 2
