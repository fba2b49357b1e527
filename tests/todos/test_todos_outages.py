"""Outages under load through the real services: PostgreSQL cut off under reads and writes, RabbitMQ stopped.

Each test prints its counts (requests by status, worst latency, lost data);
docs/reliability.md records them. The PostgreSQL "restart" cuts off only the
todos database of this test run (the machine's server is shared); the broker
outage stops the machine's RabbitMQ for 30 s, as tests/events does for 1 s.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest

from tests.events.test_broker_restart import rabbitmqctl
from tests.reports.client import wait_summary
from tests.suite import Suite, User
from tests.todos.test_todos_faults import cut_off

pytestmark = pytest.mark.slow

CUT_SECONDS = 4.0
BROKER_DOWN_SECONDS = 30.0
MAX_REQUESTS_PER_CLIENT = 5_000  # every loop is bounded, whatever the timing


@dataclass
class Load:
    """Clients that alternate a write and a read until stopped; records every answer."""

    statuses: Counter[int] = field(default_factory=Counter)
    acknowledged: list[str] = field(default_factory=list)  # ids of todos answered 201
    bad_503: list[str] = field(default_factory=list)  # 503s without Retry-After or problem+json
    others: list[str] = field(default_factory=list)  # anything but 200/201/503
    worst_seconds: float = 0.0
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def client(self, api: httpx.AsyncClient, name: str, *, reads: bool, pause: float) -> None:
        for n in range(MAX_REQUESTS_PER_CLIENT):
            if self.stop.is_set():
                return
            write = not reads or n % 2 == 0
            started = time.perf_counter()
            try:
                if write:
                    resp = await api.post("/todos", json={"content": f"{name} {n} {uuid.uuid4().hex[:6]}"})
                else:
                    resp = await api.get("/todos", params={"limit": 10})
            finally:
                self.worst_seconds = max(self.worst_seconds, time.perf_counter() - started)
            self.statuses[resp.status_code] += 1
            if resp.status_code == 201:
                self.acknowledged.append(resp.json()["id"])
            elif resp.status_code == 503:
                if "retry-after" not in resp.headers or not resp.headers["content-type"].startswith(
                    "application/problem+json"
                ):
                    self.bad_503.append(resp.text[:200])
            elif resp.status_code != 200:
                self.others.append(f"{resp.status_code} {resp.text[:200]}")
            await asyncio.sleep(pause)

    def summary(self) -> str:
        by_status = " ".join(f"{status}={count}" for status, count in sorted(self.statuses.items()))
        return (
            f"requests {by_status} worst-latency={self.worst_seconds:.2f}s acknowledged-writes={len(self.acknowledged)}"
        )


async def all_todo_ids(api: httpx.AsyncClient) -> set[str]:
    ids: set[str] = set()
    cursor: str | None = None
    for _ in range(1_000):
        params: dict[str, str | int] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        resp = await api.get("/todos", params=params)
        assert resp.status_code == 200, resp.text
        body = resp.json()
        ids.update(item["id"] for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids
    raise AssertionError("more pages than expected")


async def wait_until_ok(api: httpx.AsyncClient, timeout: float = 30) -> float:
    """Seconds until ``GET /todos`` answers 200 again."""
    started = asyncio.get_running_loop().time()
    while (await api.get("/todos", params={"limit": 1})).status_code != 200:
        assert asyncio.get_running_loop().time() - started < timeout, "the service did not recover by itself"
        await asyncio.sleep(0.1)
    return asyncio.get_running_loop().time() - started


async def test_database_cut_under_mixed_load_gives_only_503s_and_loses_no_acknowledged_write(
    suite: Suite, new_user: User
) -> None:
    dbname = suite.envs["todos"]["DATABASE_URL"].rsplit("/", 1)[1]
    load = Load()
    async with suite.client(new_user) as api:
        clients = [asyncio.create_task(load.client(api, f"mixed-{i}", reads=True, pause=0.01)) for i in range(8)]
        try:
            await asyncio.sleep(2)
            before = sum(load.statuses.values())
            await cut_off(dbname, allow_connections=False)
            try:
                await asyncio.sleep(CUT_SECONDS)
            finally:
                await cut_off(dbname, allow_connections=True)
            during = load.statuses[503]
            recovered_in = await wait_until_ok(api)
            await asyncio.sleep(2)  # load goes on after the recovery
        finally:
            load.stop.set()
            await asyncio.gather(*clients)
        stored = await all_todo_ids(api)
    lost = set(load.acknowledged) - stored
    async with suite.client(new_user, base_url=suite.reports_url) as reports:
        converged = await wait_summary(reports, lambda s: s["total"] == len(stored), timeout=30)
    print(
        f"\npostgres cut {CUT_SECONDS:.0f}s under mixed load: {load.summary()} requests-before-cut={before} "
        f"503-during-cut={during} recovered-in={recovered_in:.1f}s todos-stored={len(stored)} "
        f"lost-acknowledged-writes={len(lost)} summary-total={converged['total']}"
    )
    assert not load.others, load.others[:5]
    assert not load.bad_503, load.bad_503[:5]
    assert load.statuses[503] > 0, "the cut never reached the service"
    assert load.statuses[201] > 0 and load.statuses[200] > 0
    assert not lost, f"{len(lost)} acknowledged writes are gone"


async def test_broker_stopped_30s_under_writes_loses_no_event(suite: Suite, new_user: User) -> None:
    load = Load()
    broker_stopped = False
    async with suite.client(new_user) as api:
        writers = [asyncio.create_task(load.client(api, f"writer-{i}", reads=False, pause=0.05)) for i in range(4)]
        try:
            await asyncio.sleep(1)
            await asyncio.to_thread(rabbitmqctl, "stop_app")
            broker_stopped = True
            written_before = len(load.acknowledged)
            await asyncio.sleep(BROKER_DOWN_SECONDS)
            written_during = len(load.acknowledged) - written_before
            await asyncio.to_thread(rabbitmqctl, "start_app")
            await asyncio.to_thread(rabbitmqctl, "await_startup")
            broker_stopped = False
            back_at = asyncio.get_running_loop().time()
            await asyncio.sleep(1)
        finally:
            load.stop.set()
            await asyncio.gather(*writers, return_exceptions=True)
            if broker_stopped:
                await asyncio.to_thread(rabbitmqctl, "start_app")
                await asyncio.to_thread(rabbitmqctl, "await_startup")
        stored = await all_todo_ids(api)
    async with suite.client(new_user, base_url=suite.reports_url) as reports:
        converged = await wait_summary(reports, lambda s: s["total"] == len(load.acknowledged), timeout=90)
    caught_up = asyncio.get_running_loop().time() - back_at
    lost_writes = set(load.acknowledged) - stored
    print(
        f"\nrabbitmq stopped {BROKER_DOWN_SECONDS:.0f}s under writes: {load.summary()} "
        f"written-while-down={written_during} read-model-caught-up-in={caught_up:.1f}s after the broker returned "
        f"summary-total={converged['total']} lost-events={len(load.acknowledged) - converged['total']} "
        f"lost-writes={len(lost_writes)}"
    )
    assert set(load.statuses) == {201}, load.statuses
    assert written_during > 0
    assert not lost_writes and len(stored) == len(load.acknowledged)
