from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.kit.config import ServiceSettings
from services.kit.db import Database, FairGate
from tests.support import create_database, drop_database


async def test_fair_gate_serves_waiters_in_arrival_order_without_barging() -> None:
    gate = FairGate(1)
    await gate.acquire()
    order: list[int] = []

    async def waiter(n: int) -> None:
        await gate.acquire()
        order.append(n)
        await asyncio.sleep(0)
        gate.release()

    tasks = [asyncio.create_task(waiter(n)) for n in range(5)]
    await asyncio.sleep(0.01)
    gate.release()
    # A newcomer arriving right after the release must queue behind the five, not jump ahead.
    tasks.append(asyncio.create_task(waiter(99)))
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4, 99]


async def test_fair_gate_passes_on_a_slot_given_to_a_cancelled_waiter() -> None:
    gate = FairGate(1)
    await gate.acquire()
    first = asyncio.create_task(gate.acquire())
    second = asyncio.create_task(gate.acquire())
    await asyncio.sleep(0.01)
    first.cancel()
    gate.release()
    await asyncio.wait_for(second, 1)
    assert first.cancelled()


@pytest.fixture
async def database() -> AsyncIterator[Database]:
    name, dsn = await create_database()
    db = Database(ServiceSettings(database_url=dsn, db_pool_min=1, db_pool_max=3, db_acquire_timeout_seconds=5))
    await db.open()
    try:
        yield db
    finally:
        await db.close()
        await drop_database(name)


async def test_many_concurrent_users_of_a_small_pool_all_get_a_connection(database: Database) -> None:
    async def query(n: int) -> int:
        async with database.transaction() as conn:
            return int(await conn.fetchval("SELECT $1::int FROM pg_sleep(0.001)", n))

    results = await asyncio.gather(*(query(n) for n in range(300)))
    assert results == list(range(300))


async def test_a_full_pool_times_out_as_timeout_error(database: Database) -> None:
    slow = Database(
        ServiceSettings(database_url=database.dsn, db_pool_min=1, db_pool_max=1, db_acquire_timeout_seconds=0.2)
    )
    await slow.open()
    try:
        async with slow.connection():
            with pytest.raises(TimeoutError):
                async with slow.connection():
                    pass
    finally:
        await slow.close()


async def test_a_database_value_error_is_422_not_500() -> None:
    # A NUL byte passes most schemas but PostgreSQL refuses it: the client's input, not our fault.
    from quart import Blueprint

    from services.kit.app import create_service_app

    name, dsn = await create_database()
    bp = Blueprint("nul", __name__)

    @bp.get("/store")
    async def store_nul() -> dict[str, str]:
        import asyncpg

        conn = await asyncpg.connect(dsn)
        try:
            await conn.fetchval("SELECT $1::text", "a\x00b")
        finally:
            await conn.close()
        return {"stored": "yes"}

    try:
        app = create_service_app(ServiceSettings(service_name="nul"), blueprints=[bp], title="nul")
        resp = await app.test_client().get("/store")
        assert resp.status_code == 422
        assert resp.content_type == "application/problem+json"
    finally:
        await drop_database(name)
