"""The asyncpg pool of a service: one per process, opened at start, closed at stop."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from services.kit.config import ServiceSettings

# What store functions take: a plain connection or one borrowed from the pool.
Connection: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# Errors that mean "the database is unreachable or restarting", answered as 503.
UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.CannotConnectNowError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    # "database is not currently accepting connections" (and lock timeouts): try again later.
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError,
    # A connection cut by the server mid-protocol ("cannot switch to state … in progress");
    # the pool drops it on release.
    asyncpg.exceptions.InternalClientError,
)


class FairGate:
    """A FIFO semaphore: whoever waited longest gets the next slot.

    asyncio's queue (inside asyncpg's pool) lets a newcomer take a just-released
    connection before the waiter that was woken for it, so under load some requests
    wait far longer than others and time out. Handing each released slot directly to
    the oldest waiter keeps waits fair and bounded.
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot arrived as we were cancelled: pass it on
            elif waiter in self._waiters:  # release() may have dropped it already
                self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


async def _keep_session(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    """A release without the session reset (asyncpg still rolls back an open transaction first)."""


class Database:
    """A bounded asyncpg pool with transaction and connection helpers.

    Every acquire waits at most ``db_acquire_timeout_seconds``; every statement at
    most ``db_command_timeout_seconds``. A pool that cannot reach PostgreSQL
    raises one of :data:`UNAVAILABLE_ERRORS` (or ``TimeoutError``), which the app
    factory turns into 503.
    """

    def __init__(self, settings: ServiceSettings) -> None:
        if settings.database_url is None:
            raise ValueError("DATABASE_URL is not set")
        self._dsn = settings.database_url
        self._min = settings.db_pool_min
        self._max = settings.db_pool_max
        self._acquire_timeout = settings.db_acquire_timeout_seconds
        self._command_timeout = settings.db_command_timeout_seconds
        self._reset_session = settings.db_reset_session_on_release
        self._pool: asyncpg.Pool[asyncpg.Record] | None = None
        self._gate = FairGate(self._max)

    @property
    def dsn(self) -> str:
        return self._dsn

    @property
    def pool(self) -> asyncpg.Pool[asyncpg.Record]:
        if self._pool is None:
            raise RuntimeError("database pool is not open")
        return self._pool

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self._dsn,
            min_size=self._min,
            max_size=self._max,
            command_timeout=self._command_timeout,
            # Connections are recycled, so a restarted PostgreSQL is picked up again.
            max_inactive_connection_lifetime=300,
            reset=None if self._reset_session else _keep_session,
        )

    async def close(self) -> None:
        if self._pool is not None:
            try:
                await asyncio.wait_for(self._pool.close(), timeout=10)
            except TimeoutError:
                self._pool.terminate()
            self._pool = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Connection]:
        """A pooled connection, without a transaction; waits in FIFO order, at most the acquire timeout."""
        pool = self.pool
        # One deadline over both waits (the gate, then the pool's connection, which may have to
        # reconnect): asyncpg's own acquire timeout would add a task and a timer per request.
        async with asyncio.timeout(self._acquire_timeout):
            await self._gate.acquire()
            try:
                conn = await pool.acquire()
            except BaseException:
                self._gate.release()
                raise
        try:
            yield conn
        finally:
            try:
                await pool.release(conn)
            finally:
                self._gate.release()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        """A pooled connection inside one transaction (committed on success, rolled back on error)."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def ping(self) -> None:
        """Raise unless a round trip to PostgreSQL succeeds."""
        async with self.connection() as conn:
            await conn.fetchval("SELECT 1")
