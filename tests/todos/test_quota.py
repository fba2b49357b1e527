"""A user may hold at most MAX_TODOS_PER_USER todos, even when creates race (a todos with a quota of 5)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from services.todos.app import MIGRATIONS, create_app
from services.todos.config import TodosSettings
from tests.factories import TestIssuer, User
from tests.inprocess import InProcessService, migrated_database, serve, settings_for
from tests.support import assert_problem

QUOTA = 5


@pytest.fixture(scope="module")
async def small_quota(issuer: TestIssuer) -> AsyncIterator[InProcessService]:
    async with migrated_database(MIGRATIONS) as dsn:
        settings = settings_for(TodosSettings, dsn, max_todos_per_user=QUOTA)
        async with serve(create_app(settings, fetch_jwks=issuer.fetch_jwks), issuer) as service:
            yield service


async def _count(small_quota: InProcessService, user: User) -> int:
    async with small_quota.client(user) as api:
        listed = await api.get("/todos", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


async def test_create_past_the_quota_is_409_naming_the_limit(small_quota: InProcessService, issuer: TestIssuer) -> None:
    new_user = issuer.user()
    async with small_quota.client(new_user) as api:
        created = [await api.post("/todos", json={"content": f"todo {n}"}) for n in range(QUOTA)]
        assert [resp.status_code for resp in created] == [201] * QUOTA
        refused = assert_problem(await api.post("/todos", json={"content": "one too many"}), 409)
        assert str(QUOTA) in str(refused["detail"])
        keyed = await api.post("/todos", json={"content": "keyed"}, headers={"Idempotency-Key": "k-1"})
        assert_problem(keyed, 409)

        # Deleting one frees a place; the refused idempotent request was not stored.
        assert (await api.delete(f"/todos/{created[0].json()['id']}")).status_code == 204
        again = await api.post("/todos", json={"content": "keyed"}, headers={"Idempotency-Key": "k-1"})
        assert again.status_code == 201, again.text
        assert "idempotent-replayed" not in again.headers
        assert_problem(await api.post("/todos", json={"content": "full again"}), 409)
    assert await _count(small_quota, new_user) == QUOTA


async def test_a_concurrent_burst_cannot_exceed_the_quota(small_quota: InProcessService, issuer: TestIssuer) -> None:
    new_user, alice = issuer.user(), issuer.user()
    async with small_quota.client(new_user) as api:
        burst = await asyncio.gather(*(api.post("/todos", json={"content": f"burst {n}"}) for n in range(4 * QUOTA)))
    assert Counter(resp.status_code for resp in burst) == {201: QUOTA, 409: 3 * QUOTA}
    assert await _count(small_quota, new_user) == QUOTA

    # The quota is per user: someone else still has all of theirs.
    async with small_quota.client(alice) as api:
        assert (await api.post("/todos", json={"content": "mine"})).status_code == 201
