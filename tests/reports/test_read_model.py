"""The read model's store functions against a throwaway reports database: order and repetition do not matter."""

from __future__ import annotations

import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from services.reports.migrations import MIGRATIONS
from services.reports.store import read_model
from tests.inprocess import MigratedDatabase

BASE = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)


def at(minutes: int) -> datetime:
    return BASE + timedelta(minutes=minutes)


def fact(todo: uuid.UUID, updated: int, finished: int | None = None) -> read_model.TodoFact:
    return read_model.TodoFact(
        todo, finished is not None, at(0), at(updated), at(finished) if finished is not None else None
    )


def history() -> list[tuple[read_model.TodoFact, bool]]:
    """Every event of four todos, in the order they happened: (state, is a deletion)."""
    t0, t1, t2, t3 = (uuid.uuid4() for _ in range(4))
    return [
        (fact(t0, 0), False),  # created
        (fact(t0, 1), False),  # content changed
        (fact(t0, 2, finished=2), False),  # finished
        (fact(t0, 3), False),  # reopened
        (fact(t0, 4, finished=4), False),  # finished again
        (fact(t1, 0), False),
        (fact(t1, 5, finished=5), False),
        (fact(t1, 5, finished=5), True),  # deleted
        (fact(t2, 0), False),
        (fact(t2, 7), False),
        (fact(t3, 0), False),
        (fact(t3, 0), True),
    ]


@pytest.fixture
async def conn(migrated_db: MigratedDatabase) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(await migrated_db(MIGRATIONS))
    try:
        yield connection
    finally:
        await connection.close()


async def summary_after(conn: asyncpg.Connection, events: list[tuple[read_model.TodoFact, bool]]) -> read_model.Summary:
    owner = uuid.uuid4()
    transaction = conn.transaction()
    await transaction.start()
    try:
        for state, deleted in events:
            await read_model.apply_todo(conn, owner, state, deleted=deleted)
        result = await read_model.summary(conn, owner)
    finally:
        await transaction.rollback()
    return result


async def test_events_in_order_give_the_expected_numbers(conn: asyncpg.Connection) -> None:
    result = await summary_after(conn, history())
    assert (result.total, result.open, result.finished) == (2, 1, 1)
    assert result.median_seconds_to_finish == 4 * 60
    day = next(d for d in result.per_day if d.date == BASE.date())
    # Per day counts what exists now (issue 25): t1 (finished, then deleted) and the other deleted todo are gone.
    assert (day.created, day.finished) == (2, 1)
    assert sum(d.created for d in result.per_day) == result.total


async def test_any_order_and_any_repetition_give_the_same_numbers(conn: asyncpg.Connection) -> None:
    events = history()
    expected = await summary_after(conn, events)
    for seed in range(40):
        rng = random.Random(seed)
        shuffled = events + rng.sample(events, k=rng.randint(0, len(events)))  # some delivered twice
        rng.shuffle(shuffled)
        got = await summary_after(conn, shuffled)
        assert (got.total, got.open, got.finished, got.median_seconds_to_finish, got.per_day) == (
            expected.total,
            expected.open,
            expected.finished,
            expected.median_seconds_to_finish,
            expected.per_day,
        ), f"seed {seed}"


async def test_a_deleted_users_late_events_are_ignored(conn: asyncpg.Connection) -> None:
    owner = uuid.uuid4()
    transaction = conn.transaction()
    await transaction.start()
    try:
        await read_model.apply_todo(conn, owner, fact(uuid.uuid4(), 0))
        assert (await read_model.purge_owner(conn, owner))["todos"] == 1
        assert not await read_model.apply_todo(conn, owner, fact(uuid.uuid4(), 1))
        assert (await read_model.summary(conn, owner)).total == 0
    finally:
        await transaction.rollback()
