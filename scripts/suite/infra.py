"""PostgreSQL, RabbitMQ and Redis for the local suite: make sure they answer, create databases.

If a server does not answer on its port and is installed on this machine, it is
started (PostgreSQL with ``pg_ctlcluster``, RabbitMQ with ``rabbitmq-server
-detached``, Redis with ``redis-server --daemonize yes``, keeping nothing on disk);
every wait is bounded. ``make down`` never stops them: they are
the machine's, not the suite's.

Standard library only, except :func:`provision_databases`, which imports asyncpg
from the venv (``make`` runs this script with the venv's python).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from scripts.suite.procs import RUN_DIR, port_answers

PG_START_TIMEOUT = 60.0
REDIS_START_TIMEOUT = 20.0
RABBIT_START_TIMEOUT = 120.0


class InfraError(Exception):
    """PostgreSQL or RabbitMQ could not be reached or started."""


class Endpoint(NamedTuple):
    """Where a server listens (parsed from its URL)."""

    host: str
    port: int

    @classmethod
    def from_url(cls, url: str, default_port: int) -> Endpoint:
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or default_port)

    @property
    def is_local(self) -> bool:
        return self.host in {"127.0.0.1", "localhost", "::1"}

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def _wait_port(endpoint: Endpoint, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_answers(endpoint.host, endpoint.port):
            return True
        time.sleep(0.5)
    return False


def _run_logged(argv: Sequence[str], log_name: str, timeout: float) -> int:
    """Run a start command with its output in .run/<log_name>.log (never our stdout).

    A server that daemonizes must not inherit our stdout: whoever reads ``make``'s
    output would wait for it forever.
    """
    RUN_DIR.mkdir(exist_ok=True)
    with (RUN_DIR / f"{log_name}.log").open("ab") as log:
        try:
            done = subprocess.run(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return -1
    return done.returncode


def _local_server_or_refuse(endpoint: Endpoint, name: str, package: str, setting: str, *, installed: bool) -> None:
    """InfraError unless ``endpoint`` is on this machine and Debian's ``package`` is ``installed`` to start it."""
    if not endpoint.is_local or not installed:
        raise InfraError(
            f"{name} does not answer on {endpoint} and no local server is installed to start. "
            f"Install it (apt-get install {package}) or set {setting} that runs."
        )


def ensure_postgres(endpoint: Endpoint) -> str:
    """Make PostgreSQL answer on ``endpoint``; returns what was done."""
    if port_answers(endpoint.host, endpoint.port):
        return "answering"
    versions = sorted(
        (p.name for p in Path("/etc/postgresql").glob("*") if p.name.replace(".", "").isdigit()),
        key=lambda v: [int(x) for x in v.split(".")],
    )
    installed = bool(versions) and shutil.which("pg_ctlcluster") is not None
    _local_server_or_refuse(
        endpoint, "PostgreSQL", "postgresql", "QUARTET_PG_ADMIN_URL to a server", installed=installed
    )
    version = versions[-1]
    print(f"    starting PostgreSQL {version} (pg_ctlcluster {version} main start)", flush=True)
    code = _run_logged(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], "postgresql-start", PG_START_TIMEOUT
    )
    if not _wait_port(endpoint, PG_START_TIMEOUT):
        raise InfraError(
            f"PostgreSQL did not answer on {endpoint} (pg_ctlcluster exit {code}; see .run/postgresql-start.log)"
        )
    return "started"


def ensure_rabbitmq(endpoint: Endpoint) -> str:
    """Make RabbitMQ answer on ``endpoint``; returns what was done."""
    if port_answers(endpoint.host, endpoint.port):
        return "answering"
    installed = shutil.which("rabbitmq-server") is not None
    _local_server_or_refuse(endpoint, "RabbitMQ", "rabbitmq-server", "AMQP_URL to a broker", installed=installed)
    print("    starting RabbitMQ (rabbitmq-server -detached)", flush=True)
    deadline = time.monotonic() + RABBIT_START_TIMEOUT
    _run_logged(["rabbitmq-server", "-detached"], "rabbitmq-start", 60)
    if shutil.which("rabbitmqctl"):
        remaining = max(5, int(deadline - time.monotonic()))
        _run_logged(["rabbitmqctl", "await_startup", "--timeout", str(remaining)], "rabbitmq-start", remaining + 15)
    if not _wait_port(endpoint, max(5.0, deadline - time.monotonic())):
        raise InfraError(f"RabbitMQ did not answer on {endpoint} (see .run/rabbitmq-start.log)")
    return "started"


def ensure_redis(endpoint: Endpoint) -> str:
    """Make Redis answer on ``endpoint`` (todos' page cache); returns what was done."""
    if port_answers(endpoint.host, endpoint.port):
        return "answering"
    installed = shutil.which("redis-server") is not None
    _local_server_or_refuse(endpoint, "Redis", "redis-server", "CACHE_REDIS_URL to a Redis", installed=installed)
    print(f"    starting Redis (redis-server --port {endpoint.port} --daemonize yes)", flush=True)
    argv = ["redis-server", "--port", str(endpoint.port), "--bind", endpoint.host, "--daemonize", "yes"]
    argv += ["--save", "", "--appendonly", "no", "--logfile", str(RUN_DIR / "redis.log")]
    code = _run_logged(argv, "redis-start", REDIS_START_TIMEOUT)
    if not _wait_port(endpoint, REDIS_START_TIMEOUT):
        raise InfraError(f"Redis did not answer on {endpoint} (redis-server exit {code}; see .run/redis.log)")
    return "started"


@dataclass(frozen=True)
class DatabaseSpec:
    """A service's own role and database (both named ``quartet_<service>``)."""

    name: str
    password: str

    def url(self, endpoint: Endpoint) -> str:
        return f"postgresql://{self.name}:{quote(self.password, safe='')}@{endpoint}/{self.name}"


_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


async def _provision(admin_url: str, specs: Sequence[DatabaseSpec]) -> list[str]:
    import asyncpg  # from the venv; only this step needs it

    done: list[str] = []
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        for spec in specs:
            if not _IDENT.match(spec.name):
                raise InfraError(f"not a plain identifier: {spec.name!r}")
            # An existing role keeps its password: a second `make up` changes nothing.
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", spec.name):
                literal = spec.password.replace("'", "''")
                await conn.execute(f"CREATE ROLE \"{spec.name}\" LOGIN PASSWORD '{literal}'")
                done.append(f"role {spec.name}")
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", spec.name):
                await conn.execute(f'CREATE DATABASE "{spec.name}" OWNER "{spec.name}"')
                done.append(f"database {spec.name}")
    finally:
        await conn.close()
    return done


def provision_databases(admin_url: str, specs: Sequence[DatabaseSpec]) -> list[str]:
    """Create each missing role and database (idempotent); returns what was created."""
    if not specs:
        return []
    try:
        return asyncio.run(asyncio.wait_for(_provision(admin_url, specs), timeout=60))
    except InfraError:
        raise
    except Exception as exc:
        raise InfraError(
            f"could not create the service databases as {urlsplit(admin_url).username}@"
            f"{Endpoint.from_url(admin_url, 5432)}: {exc!r}. Set QUARTET_PG_ADMIN_URL to a superuser DSN."
        ) from exc


async def _drop(admin_url: str, names: Sequence[str]) -> list[str]:
    import asyncpg

    done: list[str] = []
    conn = await asyncpg.connect(admin_url, timeout=10)
    try:
        for name in names:
            if not _IDENT.match(name):
                raise InfraError(f"not a plain identifier: {name!r}")
            if await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                await conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                done.append(f"database {name}")
            if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
                await conn.execute(f'DROP ROLE "{name}"')
                done.append(f"role {name}")
    finally:
        await conn.close()
    return done


def drop_databases(admin_url: str, names: Sequence[str]) -> list[str]:
    """Drop each database and its owner role of the same name, where they exist; returns what went."""
    try:
        return asyncio.run(asyncio.wait_for(_drop(admin_url, names), timeout=60))
    except InfraError:
        raise
    except Exception as exc:
        raise InfraError(f"could not drop {', '.join(names)}: {exc!r}") from exc
