"""The one process harness of the end-to-end tests, built from the suite's table.

What runs comes from the table ``make up`` starts from (``SERVICES`` of
scripts/suite/table.py): each service's module, whether it has a database, its
workers, and the gateway's upstream settings (``<NAME>_URLS``, one per row). What
differs in tests is written here once: free ports, a throwaway database per service,
a unique event exchange and queue names (so it runs beside a ``make up`` suite and
other test runs), test secrets and cheap password hashing.

- :class:`Suite`: auth, todos, reports and its worker (ping and a gateway when asked),
  shared by the test session (the ``suite`` fixture) or started for one purpose (the
  browser's, a traced one) with :func:`running`;
- :func:`launch`, :func:`launch_ping`, :func:`launch_gateway`: one process on its own;
- :func:`auth_env`: the environment of a test auth process.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from scripts.suite import table
from tests.auth.flows import PASSWORD, WORKER_SECRET, AuthFlows
from tests.factories import USER_SCOPES as USER_SCOPES
from tests.factories import User as User
from tests.support import (
    AMQP_URL,
    ServiceProcess,
    create_database,
    delete_event_queues,
    drop_database,
    free_port,
    unique,
)

# name -> the table's row (module, port, has_database, extras); the gateway routes to each.
SERVICES = {row.name: row for row in table.SERVICES}
# Every process name of the table (services, workers, the gateway) -> its module.
MODULES = table.modules()
# The services the end-to-end suite runs, in start order (auth first: the others need its keys).
E2E_SERVICES = ("auth", "todos", "reports")

# The key-encryption key of every auth process the tests start (one per test run).
SIGNING_KEK = base64.b64encode(os.urandom(32)).decode()
# Cheap argon2 for tests (the defaults cost ~64 MiB and tens of ms per hash).
FAST_HASHING = {"PASSWORD_TIME_COST": "1", "PASSWORD_MEMORY_KIB": "1024", "PASSWORD_PARALLELISM": "1"}
PING_REGION = "test-region"
# EVENTS_RETRY_DELAYS of the suite's consumers (their retry queues are named after them).
RETRY_DELAYS = (0.2, 0.5)


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


def launch(name: str, env: Mapping[str, str], log_dir: Path, *, module: str | None = None) -> ServiceProcess:
    """``name``'s module of the table (or ``module``) on ``env["PORT"]``, ready; stopped if it never is."""
    proc = ServiceProcess(module or MODULES[name], env, log_dir / f"{name}-{env['PORT']}.log")
    try:
        proc.wait_ready()
    except BaseException:
        proc.stop()
        raise
    return proc


def nothing_listening() -> str:
    """A base URL where nothing listens: a port that was free a moment ago."""
    return f"http://127.0.0.1:{free_port()}"


def launch_ping(log_dir: Path, name: str = "ping", **env: str) -> ServiceProcess:
    port = free_port()
    return launch(name, {"PORT": str(port), "REGION": PING_REGION, "INSTANCE": f"ping-{port}", **env}, log_dir)


def launch_gateway(log_dir: Path, env: Mapping[str, str]) -> ServiceProcess:
    """A real gateway on a free port, ready; the table's upstreams not in ``env`` lead nowhere."""
    upstreams = {row.urls_setting: nothing_listening() for row in SERVICES.values()}
    own = {"PORT": str(free_port()), "METRICS_PORT": str(free_port())}
    return launch(table.GATEWAY.name, {**upstreams, **own, **env}, log_dir)


def _url_of(name: str) -> Any:
    """A property of :class:`Suite`: the base URL of its process ``name``."""
    return property(lambda suite: suite.processes[name].url)


@dataclass
class Suite:
    log_dir: Path
    exchange: str = field(default_factory=lambda: unique("test_suite_events"))
    amqp_url: str = AMQP_URL
    processes: dict[str, ServiceProcess] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    # The full environment each service was started with (workers of a service reuse it).
    envs: dict[str, dict[str, str]] = field(default_factory=dict)
    # Given to every process of this suite (e.g. OTEL_* variables for a traced suite).
    extra_env: dict[str, str] = field(default_factory=dict)

    # Where this suite's processes answer.
    auth_url = _url_of("auth")
    todos_url = _url_of("todos")
    reports_url = _url_of("reports")
    gateway_url = _url_of("gateway")

    def common_env(self) -> dict[str, str]:
        return {
            "AUTH_URL": self.auth_url,
            "AMQP_URL": self.amqp_url,
            "EVENTS_EXCHANGE": self.exchange,
            "EVENTS_RETRY_DELAYS": str(list(RETRY_DELAYS)),
            "DB_POOL_MIN": "1",
            **self.extra_env,
        }

    async def start(
        self,
        *,
        auth: Mapping[str, str] | None = None,
        ping: Mapping[str, str] | None = None,
        gateway: Mapping[str, str] | None = None,
    ) -> None:
        """Auth (``auth``: settings of its own), todos, reports and its workers; ping and a gateway
        in front of them all when given their settings (``{}`` for none of their own)."""
        await self.start_auth(**(auth or {}))
        for name in E2E_SERVICES[1:]:
            await self.start_service(name, env=self.reports_env() if name == "reports" else None)
            for extra in SERVICES[name].extras:
                await self.start_worker(extra.name, service=name, of=name)
        if ping is not None:
            self.processes["ping"] = launch_ping(self.log_dir, **ping)
        if gateway is not None:
            self.processes["gateway"] = launch_gateway(
                self.log_dir, {**self.gateway_env(), **self.extra_env, **gateway}
            )

    async def new_database(self) -> str:
        db_name, dsn = await create_database()
        self.databases.append(db_name)
        return dsn

    async def start_auth(self, **extra: str) -> ServiceProcess:
        dsn = await self.new_database()
        env = auth_env(free_port(), dsn, EVENTS_EXCHANGE=self.exchange, **{**self.extra_env, **extra})
        self.envs["auth"] = env
        self.processes["auth"] = proc = launch("auth", env, self.log_dir)
        return proc

    async def start_service(
        self, name: str, *, of: str | None = None, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        """The table's service ``of`` (default: ``name``) as process ``name`` on a free port, with a new database."""
        row = SERVICES[of or name]
        full_env = {**self.common_env(), "PORT": str(free_port()), **(env or {})}
        if row.has_database:
            full_env.setdefault("DATABASE_URL", await self.new_database())
        if "SERVICE_NAME" not in full_env:
            # Its own queues: a `make up` todos (or another test run) must never take this one's events.
            full_env.setdefault("EVENTS_QUEUE_PREFIX", unique(name.replace("-", "_")))
        self.envs[name] = full_env
        self.processes[name] = proc = launch(name, full_env, self.log_dir, module=row.module)
        return proc

    def gateway_env(self, ping_url: str | None = None) -> dict[str, str]:
        """A gateway's settings in front of this suite (and a ping instance): each running row's route leads here."""
        urls = {name: proc.url for name, proc in self.processes.items() if name in SERVICES}
        if ping_url is not None:
            urls["ping"] = ping_url
        return {"AUTH_URL": self.auth_url, **{SERVICES[name].urls_setting: url for name, url in urls.items()}}

    def reports_env(self, **extra: str) -> dict[str, str]:
        """A reports service of its own: a unique name keeps its event and job queues apart from others'."""
        return {
            "SERVICE_NAME": unique("reports"),
            "TODOS_URL": self.todos_url,
            "REPORTS_WORKER_CLIENT_SECRET": WORKER_SECRET,
            "FETCH_BACKOFF_MIN_SECONDS": "0.2",
            "FETCH_BACKOFF_MAX_SECONDS": "0.5",
            "DB_POOL_MAX": "5",  # PostgreSQL's connections are shared with every other test run on the machine
            "WORKER_METRICS_PORT": "0",  # workers of every test run side by side: each takes a free port
            **extra,
        }

    def jobs_queue(self, service: str = "reports") -> str:
        return f"{self.envs[service]['SERVICE_NAME']}.jobs"

    async def start_worker(
        self, name: str, service: str = "reports", env: dict[str, str] | None = None, *, of: str = "reports"
    ) -> ServiceProcess:
        """A worker of the table's service ``of`` for process ``service`` (its database and queues), consuming
        once this returns."""
        (worker,) = SERVICES[of].extras
        full_env = {k: v for k, v in self.envs[service].items() if k != "PORT"}
        full_env.update({"INSTANCE": name, **(env or {})})
        before = await self.queue_consumers(self.jobs_queue(service))
        proc = ServiceProcess(worker.module, full_env, self.log_dir / f"{name}-{unique('w')}.log")
        self.processes[name] = proc
        await self.wait_consumers(self.jobs_queue(service), before + 1, proc)
        return proc

    async def queue_consumers(self, queue: str) -> int:
        """How many consumers ``queue`` has (0 when it does not exist yet)."""
        connection = await aio_pika.connect(self.amqp_url)
        async with connection:
            channel = await connection.channel()
            try:
                declared = await channel.declare_queue(queue, passive=True)
            except aio_pika.exceptions.ChannelClosed:
                return 0
            return int(declared.declaration_result.consumer_count or 0)

    async def wait_consumers(
        self, queue: str, count: int, proc: ServiceProcess | None = None, timeout: float = 30
    ) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while await self.queue_consumers(queue) < count:
            if proc is not None and proc.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {proc.proc.returncode}:\n{proc.logs()[-4000:]}")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{queue} has fewer than {count} consumers after {timeout}s")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()
        for name in self.databases:
            await drop_database(name)
        await self.delete_queues()

    async def delete_queues(self) -> None:
        """Delete the durable queues of the uniquely named services this suite ran (they outlive it otherwise)."""
        names = {env["SERVICE_NAME"] for env in self.envs.values() if "SERVICE_NAME" in env}
        prefixes = names | {env["EVENTS_QUEUE_PREFIX"] for env in self.envs.values() if "EVENTS_QUEUE_PREFIX" in env}
        jobs = [f"{name}.jobs" for name in names]
        await delete_event_queues(self.amqp_url, self.exchange, prefixes, RETRY_DELAYS, jobs)

    def flows(self) -> AuthFlows:
        return AuthFlows(self.auth_url)

    async def register(self) -> User:
        async with self.flows() as flows:
            user = await flows.register()
            tokens = await flows.sign_in(user["email"], USER_SCOPES)
        return User(id=user["id"], email=user["email"], token=tokens["access_token"])

    async def login(self, user: User, scope: str = USER_SCOPES) -> str:
        async with self.flows() as flows:
            tokens = await flows.sign_in(user.email, scope, PASSWORD)
        return str(tokens["access_token"])

    async def service_token(self, scope: str) -> str:
        async with self.flows() as flows:
            resp = await flows.client_credentials(scope)
        assert resp.status_code == 200, resp.text
        return str(resp.json()["access_token"])

    async def delete_account(self, user: User) -> None:
        async with httpx.AsyncClient(base_url=self.auth_url) as http:
            resp = await http.delete("/auth/me", headers={"Authorization": f"Bearer {user.token}"})
        assert resp.status_code == 204, resp.text

    @asynccontextmanager
    async def client(self, user: User, *, token: str | None = None, base_url: str | None = None) -> AsyncIterator[Any]:
        headers = {"Authorization": f"Bearer {token or user.token}"}
        async with httpx.AsyncClient(base_url=base_url or self.todos_url, headers=headers, timeout=30) as http:
            yield http


@asynccontextmanager
async def running(suite: Suite, **start: Mapping[str, str] | None) -> AsyncIterator[Suite]:
    """``suite`` started (``Suite.start``'s options), stopped and cleaned up afterwards."""
    try:
        await suite.start(**start)
        yield suite
    finally:
        await suite.stop()
