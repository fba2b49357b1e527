from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from services.kit.migrations import MigrationSource, migrate
from tests.support import create_database, drop_database


@pytest.fixture
async def database() -> AsyncIterator[str]:
    name, dsn = await create_database()
    try:
        yield dsn
    finally:
        await drop_database(name)


def write(folder: Path, name: str, sql: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(sql)


async def test_migrations_apply_in_order_once_and_are_recorded(database: str, tmp_path: Path) -> None:
    kit = tmp_path / "kit"
    svc = tmp_path / "svc"
    write(kit, "0001_base.sql", "CREATE TABLE base (id int PRIMARY KEY);")
    write(svc, "0001_items.sql", "CREATE TABLE items (id int REFERENCES base(id));")
    write(svc, "0002_more.sql", "ALTER TABLE items ADD COLUMN name text;")
    sources = [MigrationSource("kit", kit), MigrationSource("svc", svc)]

    assert await migrate(database, sources) == ["kit/0001_base", "svc/0001_items", "svc/0002_more"]
    assert await migrate(database, sources) == []

    write(svc, "0003_index.sql", "CREATE INDEX items_name ON items (name);")
    assert await migrate(database, sources) == ["svc/0003_index"]
    conn = await asyncpg.connect(database)
    try:
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY applied_at")]
        assert versions == ["kit/0001_base", "svc/0001_items", "svc/0002_more", "svc/0003_index"]
    finally:
        await conn.close()


async def test_concurrent_migrators_apply_each_file_exactly_once(database: str, tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    # Not idempotent on purpose: a second run of this file would fail.
    write(folder, "0001_t.sql", "CREATE TABLE t (id int); SELECT pg_sleep(0.2);")
    sources = [MigrationSource("svc", folder)]
    results = await asyncio.gather(*(migrate(database, sources) for _ in range(4)))
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]


async def test_failing_migration_rolls_back_and_is_not_recorded(database: str, tmp_path: Path) -> None:
    folder = tmp_path / "svc"
    write(folder, "0001_ok.sql", "CREATE TABLE ok (id int);")
    write(folder, "0002_bad.sql", "CREATE TABLE half (id int); SELECT * FROM no_such_table;")
    with pytest.raises(asyncpg.UndefinedTableError):
        await migrate(database, [MigrationSource("svc", folder)])
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT to_regclass('half')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations") == 1
    finally:
        await conn.close()


def test_badly_named_migration_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "1_oops.sql", "SELECT 1;")
    with pytest.raises(ValueError, match=r"NNNN_name\.sql"):
        MigrationSource("svc", tmp_path).files()
