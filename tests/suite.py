"""The suite as real processes, for the end-to-end tests: auth + todos + reports and its worker.

One session-wide set of processes on free ports, with throwaway databases and a
unique event exchange, so it runs beside a ``make up`` suite. Which module runs a
service (and its workers) comes from the supervisor's table, ``SERVICES`` in
scripts/suite.py, so the tests start what ``make up`` starts.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from tests.auth.conftest import auth_env
from tests.auth.flows import PASSWORD, WORKER_SECRET, AuthFlows
from tests.factories import USER_SCOPES, User
from tests.support import (
    AMQP_URL,
    ROOT,
    ServiceProcess,
    create_database,
    delete_event_queues,
    drop_database,
    free_port,
    unique,
)


def _supervisor_table() -> dict[str, Any]:
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import suite as supervisor
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    return {row.name: row for row in supervisor.SERVICES}


# name -> the supervisor's row (module, port, has_database, extras)
SERVICES = _supervisor_table()
# The services the end-to-end suite runs, in start order (auth first: the others need its keys).
E2E_SERVICES = ("auth", "todos", "reports")


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

    @property
    def auth_url(self) -> str:
        return self.processes["auth"].url

    @property
    def todos_url(self) -> str:
        return self.processes["todos"].url

    @property
    def reports_url(self) -> str:
        return self.processes["reports"].url

    def common_env(self) -> dict[str, str]:
        return {
            "AUTH_URL": self.auth_url,
            "AMQP_URL": self.amqp_url,
            "EVENTS_EXCHANGE": self.exchange,
            "EVENTS_RETRY_DELAYS": "[0.2, 0.5]",
            "DB_POOL_MIN": "1",
            **self.extra_env,
        }

    async def start_service(
        self, name: str, module: str | None = None, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        """Start ``module`` (default: the table's module of ``name``) on a free port with a new database."""
        module = module or SERVICES[name].module
        db_name, dsn = await create_database()
        self.databases.append(db_name)
        port = free_port()
        full_env = {**self.common_env(), "PORT": str(port), "DATABASE_URL": dsn, **(env or {})}
        if "SERVICE_NAME" not in full_env:
            # Its own queues: a `make up` todos (or another test run) must never take this one's events.
            full_env.setdefault("EVENTS_QUEUE_PREFIX", unique(name.replace("-", "_")))
        proc = ServiceProcess(module, full_env, self.log_dir / f"{name}-{port}.log")
        self.processes[name] = proc
        self.envs[name] = full_env
        proc.wait_ready()
        return proc

    async def start(self) -> None:
        db_name, dsn = await create_database()
        self.databases.append(db_name)
        port = free_port()
        env = auth_env(port, dsn, EVENTS_EXCHANGE=self.exchange, **self.extra_env)
        auth = ServiceProcess(SERVICES["auth"].module, env, self.log_dir / f"auth-{port}.log")
        self.processes["auth"] = auth
        auth.wait_ready()
        for name in E2E_SERVICES[1:]:
            await self.start_service(name, env=self.reports_env() if name == "reports" else None)
            for extra in SERVICES[name].extras:
                await self.start_worker(extra.name, service=name)

    def gateway_env(self, ping_url: str) -> dict[str, str]:
        """A gateway's settings in front of this suite (and a ping instance): every route leads here."""
        return {
            "AUTH_URL": self.auth_url,
            "AUTH_URLS": self.auth_url,
            "TODOS_URLS": self.todos_url,
            "REPORTS_URLS": self.reports_url,
            "PING_URLS": ping_url,
        }

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
        self, name: str, service: str = "reports", env: dict[str, str] | None = None
    ) -> ServiceProcess:
        """A report worker for ``service`` (its database and queues), consuming once this returns."""
        (worker,) = SERVICES["reports"].extras
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
        await delete_event_queues(self.amqp_url, self.exchange, prefixes, (0.2, 0.5), jobs)  # EVENTS_RETRY_DELAYS

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
