from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import structlog

from tests.factories import TestIssuer
from tests.inprocess import MigratedDatabase, migrated_databases
from tests.suite import Suite, User, launch_ping, running
from tests.support import ServiceProcess

# A developer's .env must not change what the tests start or construct (tests that are about
# .env name their file). An explicit QUARTET_ENV_FILE in the caller's environment still wins.
os.environ.setdefault("QUARTET_ENV_FILE", "")


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Undo a process entry point run in-process (``worker.main()``): its ``configure_logging`` binds
    structlog and the root handler to this test's captured stdout, which is closed afterwards, and
    every later in-process app would fail writing its first log line to it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    if structlog.is_configured():
        structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="module")
def ping_service(log_dir: Path) -> Iterator[ServiceProcess]:
    """A real ping process on a free port, shared by a test module."""
    with launch_ping(log_dir) as proc:
        yield proc


@pytest.fixture(scope="session")
async def suite(log_dir: Path) -> AsyncIterator[Suite]:
    """auth + todos (+ reports) as real processes, shared by the whole test session."""
    async with running(Suite(log_dir)) as started:
        yield started


@pytest.fixture(scope="session")
async def alice(suite: Suite) -> User:
    return await suite.register()


@pytest.fixture(scope="session")
async def bob(suite: Suite) -> User:
    return await suite.register()


@pytest.fixture(scope="session")
async def pager(suite: Suite) -> User:
    return await suite.register()


@pytest.fixture
async def new_user(suite: Suite) -> User:
    return await suite.register()


@pytest.fixture(scope="session")
def issuer() -> TestIssuer:
    """The signing key in-process services trust (tests/inprocess.py)."""
    return TestIssuer()


@pytest.fixture
async def migrated_db() -> AsyncIterator[MigratedDatabase]:
    """A throwaway database for this test: ``dsn = await migrated_db(service.app.MIGRATIONS)`` (dropped after)."""
    async with migrated_databases() as make:
        yield make
