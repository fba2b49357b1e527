"""Faults: a database that is unreachable answers 503 (never 500) and the service recovers by itself."""

from __future__ import annotations

import asyncio

import asyncpg

from tests.suite import Suite, User
from tests.support import PG_ADMIN_DSN


async def cut_off(dbname: str, *, allow_connections: bool) -> None:
    """Refuse (or allow again) new connections to ``dbname`` and cut the open ones, as a restart does."""
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS {str(allow_connections).lower()}')
        if not allow_connections:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                dbname,
            )
    finally:
        await admin.close()


async def test_unreachable_database_gives_503_then_recovers(suite: Suite, alice: User) -> None:
    dbname = suite.envs["todos"]["DATABASE_URL"].rsplit("/", 1)[1]
    async with suite.client(alice) as api:
        assert (await api.get("/todos")).status_code == 200
        await cut_off(dbname, allow_connections=False)
        try:
            down = [await api.get("/todos") for _ in range(5)]
            errors = [line for line in suite.processes["todos"].logs().splitlines() if '"level": "error"' in line]
            assert {r.status_code for r in down} == {503}, (errors[-2:], [r.text for r in down])
            assert all(r.headers["content-type"].startswith("application/problem+json") for r in down)
            assert (await api.get("/readyz")).status_code == 503
        finally:
            await cut_off(dbname, allow_connections=True)
        deadline = asyncio.get_running_loop().time() + 30
        while (await api.get("/todos")).status_code != 200:
            assert asyncio.get_running_loop().time() < deadline, "the service did not recover"
            await asyncio.sleep(0.2)
        assert (await api.post("/todos", json={"content": "after the outage"})).status_code == 201
        assert (await api.get("/readyz")).status_code == 200
