"""A real auth process per test module, on a free port, with its own throwaway database."""

from __future__ import annotations

import base64
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
from joserfc.jwk import JWKRegistry, Key

from services.auth.sealing import KeyEncryptionKeys, SealedKey
from tests.auth.flows import WORKER_SECRET, AuthFlows
from tests.support import AMQP_URL, ServiceProcess, create_database, drop_database, free_port, unique

# The key-encryption key of every auth process these tests start (one per test run).
SIGNING_KEK = base64.b64encode(os.urandom(32)).decode()

# Cheap argon2 for tests (the defaults cost ~64 MiB and tens of ms per hash).
FAST_HASHING = {"PASSWORD_TIME_COST": "1", "PASSWORD_MEMORY_KIB": "1024", "PASSWORD_PARALLELISM": "1"}


@dataclass
class AuthService:
    process: ServiceProcess
    dsn: str
    port: int
    exchange: str

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def issuer(self) -> str:
        return self.process.url

    def flows(self, address: str | None = None, source: str | None = None) -> AuthFlows:
        return AuthFlows(self.url, address=address, source=source)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    async def signing_key(self) -> tuple[str, Key]:
        """The current private signing key, read from the service's database and unsealed with the
        test KEK (to forge tokens)."""
        rows = await self.fetch(
            "SELECT kid, sealed_private, wrapped_data_key, kek_id FROM signing_keys WHERE activated_at <= now() "
            "ORDER BY activated_at DESC LIMIT 1"
        )
        row = rows[0]
        sealed = SealedKey(row["sealed_private"], row["wrapped_data_key"], row["kek_id"])
        jwk = KeyEncryptionKeys.from_setting(SIGNING_KEK).open(row["kid"], sealed)
        return row["kid"], JWKRegistry.import_key(jwk)


def auth_env(port: int, dsn: str, exchange: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a test auth process (``extra`` overrides any of it)."""
    return {
        "PORT": str(port),
        "AUTH_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": dsn,
        "EVENTS_EXCHANGE": exchange or unique("test_auth_events"),
        "REPORTS_WORKER_CLIENT_SECRET": WORKER_SECRET,
        "SIGNING_KEK": SIGNING_KEK,
        "WEB_EXTRA_REDIRECT_URIS": "http://127.0.0.1:5173/callback",
        "DB_POOL_MIN": "1",
        "DB_POOL_MAX": "8",
        **FAST_HASHING,
        **extra,
    }


@pytest.fixture(scope="module")
async def auth_db() -> AsyncIterator[tuple[str, str]]:
    name, dsn = await create_database()
    try:
        yield name, dsn
    finally:
        await drop_database(name)


async def start_auth(auth_db: tuple[str, str], log_dir: Path, **extra: str) -> AsyncIterator[AuthService]:
    """Run an auth process for the duration; afterwards delete its events exchange."""
    port, exchange = free_port(), unique("test_auth_events")
    proc = ServiceProcess("services.auth", auth_env(port, auth_db[1], exchange, **extra), log_dir / f"auth-{port}.log")
    try:
        proc.wait_ready()
        yield AuthService(proc, auth_db[1], port, exchange)
    finally:
        proc.stop()
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await channel.exchange_delete(exchange)


@pytest.fixture(scope="module")
async def auth_service(auth_db: tuple[str, str], log_dir: Path) -> AsyncIterator[AuthService]:
    async for service in start_auth(auth_db, log_dir):
        yield service


@pytest.fixture
async def flows(auth_service: AuthService) -> AsyncIterator[AuthFlows]:
    async with auth_service.flows() as f:
        yield f


@pytest.fixture
async def user(flows: AuthFlows) -> dict[str, Any]:
    return await flows.register()
