"""Helpers shared by the tests: free ports, service processes, throwaway databases, problem checks.

Tests start real processes (``python -m services.<name>``) on free ports with
their own databases and exchange names, so they run beside a ``make up`` suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import aio_pika
import asyncpg
import httpx
import redis.asyncio as redis

from scripts.suite.procs import free_port as free_port
from services.kit.events import alternate_exchange_name, dead_letter_queue, events_queue, retry_queue, unrouted_name

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_DSN = os.environ.get("QUARTET_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("QUARTET_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672/")
# Tests run every service as this one broker user, so it owns every event type there
# (tests/events/test_producers.py checks the ownership rules with users of its own).
TEST_BROKER_USER = unquote(urlsplit(AMQP_URL).username or "guest")
TEST_PRODUCERS = {prefix: TEST_BROKER_USER for prefix in ("user", "todo", "report")}


def assert_problem(resp: httpx.Response, status: int) -> dict[str, Any]:
    """``resp`` is an RFC 9457 problem of ``status`` whose request id matches the response's; returns the body."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = resp.json()
    assert body["status"] == status
    assert body["request_id"] == resp.headers["x-request-id"]
    assert {"type", "title", "detail"} <= body.keys()
    return body


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class ServiceProcess:
    """One service (or the gateway) running as a real child process."""

    def __init__(self, module: str, env: Mapping[str, str], log_path: Path, args: tuple[str, ...] = ()) -> None:
        self.module = module
        self.port = int(env["PORT"]) if "PORT" in env else 0
        self.url = f"http://127.0.0.1:{self.port}"
        # The gateway's private metrics listener, when the test gave it a port.
        self.metrics_url = f"http://127.0.0.1:{env['METRICS_PORT']}" if "METRICS_PORT" in env else self.url
        self.log_path = log_path
        full_env = {**os.environ, "LOG_LEVEL": "INFO", "EVENTS_PRODUCERS": json.dumps(TEST_PRODUCERS), **env}
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, path: str = "/readyz", timeout: float = 30.0) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.module} exited with {self.proc.returncode}:\n{self.logs()[-4000:]}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.module} not ready after {timeout}s:\n{self.logs()[-4000:]}")

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def signal(self, sig: int) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode


async def create_database(name: str | None = None) -> tuple[str, str]:
    """Create a throwaway database; returns (name, dsn)."""
    name = name or unique("quartet_test")
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name, f"postgresql://postgres@127.0.0.1:5432/{name}"


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def delete_event_queues(
    amqp_url: str, exchange: str, prefixes: Iterable[str], retry_delays: Iterable[float], extra: Iterable[str] = ()
) -> None:
    """Delete the durable queues services with these queue prefixes declared on ``exchange`` (and ``extra``),
    then the exchange and its alternate.

    They outlive the test otherwise. Queues that do not exist are skipped.
    """
    delays = list(retry_delays)
    queues = [*extra, unrouted_name(exchange)]
    for prefix in prefixes:
        queues += [events_queue(prefix), dead_letter_queue(prefix), *(retry_queue(prefix, d) for d in delays)]
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        for queue in queues:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(queue)
        for name in (alternate_exchange_name(exchange), exchange):
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.exchange_delete(name)


async def drop_keys(url: str, prefix: str) -> None:
    """Delete the Redis keys under ``prefix`` (a test's own, so tests beside it and a running suite keep theirs)."""
    client = redis.Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
    finally:
        await client.aclose()


@contextlib.contextmanager
def private_redis(port: int, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """A ``redis-server`` of the test's own on ``port`` (``args``: more of its options), to stop or pause."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: `make bootstrap` installs it")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        # PONG, or NOAUTH from a server with a password: either way it listens.
        while not subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"private redis-server on {port} did not start")
            time.sleep(0.05)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)  # a paused one cannot stop
            proc.terminate()
            proc.wait(10)
