"""A user may hold at most MAX_TODOS_PER_USER todos, even when creates race (a todos with a quota of 5)."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from tests.suite import Suite, User
from tests.support import ServiceProcess, assert_problem

QUOTA = 5


@pytest.fixture(scope="module")
async def small_quota(suite: Suite) -> ServiceProcess:
    return await suite.start_service("todos-quota", "services.todos", {"MAX_TODOS_PER_USER": str(QUOTA)})


async def _count(suite: Suite, user: User, url: str) -> int:
    async with suite.client(user, base_url=url) as api:
        listed = await api.get("/todos", params={"limit": 100})
    assert listed.status_code == 200, listed.text
    return len(listed.json()["items"])


async def test_create_past_the_quota_is_409_naming_the_limit(
    suite: Suite, small_quota: ServiceProcess, new_user: User
) -> None:
    async with suite.client(new_user, base_url=small_quota.url) as api:
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
    assert await _count(suite, new_user, small_quota.url) == QUOTA


async def test_a_concurrent_burst_cannot_exceed_the_quota(
    suite: Suite, small_quota: ServiceProcess, new_user: User, alice: User
) -> None:
    async with suite.client(new_user, base_url=small_quota.url) as api:
        burst = await asyncio.gather(*(api.post("/todos", json={"content": f"burst {n}"}) for n in range(4 * QUOTA)))
    assert Counter(resp.status_code for resp in burst) == {201: QUOTA, 409: 3 * QUOTA}
    assert await _count(suite, new_user, small_quota.url) == QUOTA

    # The quota is per user: someone else still has all of theirs.
    async with suite.client(alice, base_url=small_quota.url) as api:
        assert (await api.post("/todos", json={"content": "mine"})).status_code == 201
