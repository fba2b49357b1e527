"""argon2 work waits in a bounded queue: a flood of registrations gets 503, never an endless wait."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.auth.conftest import AuthService, start_auth
from tests.auth.flows import PASSWORD, authorization


@pytest.fixture(scope="module")
async def auth_service(auth_db: tuple[str, str], log_dir: Path) -> AsyncIterator[AuthService]:
    """One hashing thread, a queue of two, and hashes slow enough to pile up."""
    slow = {
        "HASH_THREADS": "1",
        "HASH_QUEUE_LIMIT": "2",
        "PASSWORD_TIME_COST": "2",
        "PASSWORD_MEMORY_KIB": str(32 * 1024),
    }
    async for service in start_auth(auth_db, log_dir, **slow):
        yield service


async def test_a_registration_flood_is_refused_with_503_and_retry_after(auth_service: AuthService) -> None:
    async with auth_service.flows() as flows:
        user = await flows.register()

        async def register() -> httpx.Response:
            email = f"flood-{secrets.token_hex(6)}@example.com"
            return await flows.http.post("/auth/register", json={"email": email, "password": PASSWORD})

        answers = await asyncio.gather(*(register() for _ in range(16)))
        statuses = sorted(r.status_code for r in answers)
        assert set(statuses) == {201, 503}, statuses
        assert statuses.count(201) >= 1
        busy = next(r for r in answers if r.status_code == 503)
        assert busy.headers["content-type"].startswith("application/problem+json")
        assert int(busy.headers["retry-after"]) >= 1
        assert busy.json()["status"] == 503

        # Once the flood has drained, sign-ins and registrations work again.
        await flows.authorize(authorization(), user["email"])
        await flows.register()
