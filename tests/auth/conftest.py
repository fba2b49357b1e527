"""Auth for a test module, with its own throwaway database: a real process on a free port
(``auth_service``, started by the harness of tests/suite.py with its ``auth_env``), or the app
in the test's own process (``auth_in_process``) for the tests of its handlers; a module picks
the second by overriding ``auth_service`` with it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
from joserfc.jwk import JWKRegistry, Key
from quart import Quart

from quartet_client.auth import UserProfile
from services.auth.app import create_app
from services.auth.config import AuthSettings
from services.auth.sealing import KeyEncryptionKeys, SealedKey
from tests.auth.flows import AuthFlows
from tests.factories import TestIssuer
from tests.inprocess import serve, settings_for
from tests.suite import SIGNING_KEK, auth_env, launch
from tests.support import AMQP_URL, ServiceProcess, create_database, drop_database, free_port, unique


@dataclass
class AuthService:
    process: ServiceProcess | None  # None: in-process, requests go to ``app``
    dsn: str
    port: int
    exchange: str
    app: Quart | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def issuer(self) -> str:
        return self.url

    def flows(self, address: str | None = None, source: str | None = None) -> AuthFlows:
        return AuthFlows(self.url, address=address, source=source, app=self.app)

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
    try:
        with launch("auth", auth_env(port, auth_db[1], exchange, **extra), log_dir) as proc:
            yield AuthService(proc, auth_db[1], port, exchange)
    finally:
        await delete_exchange(exchange)


async def delete_exchange(exchange: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.exchange_delete(exchange)


@pytest.fixture(scope="module")
async def auth_service(auth_db: tuple[str, str], log_dir: Path) -> AsyncIterator[AuthService]:
    async for service in start_auth(auth_db, log_dir):
        yield service


@pytest.fixture(scope="module")
async def auth_in_process(auth_db: tuple[str, str], issuer: TestIssuer) -> AsyncIterator[AuthService]:
    """The auth app in this process (same settings as ``auth_service``'s process), on the module's database."""
    port, exchange = free_port(), unique("test_auth_events")  # the port only names the issuer: nothing listens
    env = auth_env(port, auth_db[1], exchange)
    settings = settings_for(AuthSettings, auth_db[1], **{k.lower(): v for k, v in env.items() if k != "DATABASE_URL"})
    try:
        async with serve(create_app(settings), issuer) as service:
            yield AuthService(None, auth_db[1], port, exchange, service.app)
    finally:
        await delete_exchange(exchange)


@pytest.fixture
async def flows(auth_service: AuthService) -> AsyncIterator[AuthFlows]:
    async with auth_service.flows() as f:
        yield f


@pytest.fixture
async def user(flows: AuthFlows) -> UserProfile:
    return await flows.register()
