"""The page cache's pipelined Redis connection (services/kit/redis_link.py) against real redis-servers.

The shared Redis for what any server does (keys unique per test); a private ``redis-server``
on a free port for what must not touch the shared one: a password, a pause, a restart,
a script cache flushed.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator

import pytest

from services.kit.redis_link import RedisLink, ReplyError, Script
from tests.support import free_port, private_redis, unique

SHARED = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def link() -> AsyncIterator[RedisLink]:
    link = RedisLink(SHARED, timeout=2.0)
    yield link
    await link.aclose()


async def test_concurrent_calls_each_get_their_own_reply_in_spite_of_cancelled_ones(link: RedisLink) -> None:
    prefix = unique("link")
    try:
        await asyncio.gather(*(link.call("SET", f"{prefix}:{i}", f"value-{i}", "PX", 60_000) for i in range(200)))

        async def get(i: int) -> tuple[int, bytes]:
            return i, await link.call("GET", f"{prefix}:{i}")

        tasks = [asyncio.create_task(get(i)) for i in range(500)]
        for task in tasks[::7]:
            task.cancel()  # their replies still arrive, and must not go to the next caller
        done = await asyncio.gather(*tasks, return_exceptions=True)
        answered = [d for d in done if not isinstance(d, BaseException)]
        assert len(answered) == 500 - len(tasks[::7])
        for i, value in answered:
            assert value == (f"value-{i}".encode() if i < 200 else None)
        assert await link.call("GET", f"{prefix}:7") == b"value-7"  # still in step afterwards
    finally:
        await link.call("DEL", *(f"{prefix}:{i}" for i in range(200)))


async def test_an_error_reply_raises_and_the_connection_stays_usable(link: RedisLink) -> None:
    key = unique("link")
    await link.call("SET", key, "text", "PX", 60_000)
    with pytest.raises(ReplyError, match="WRONGTYPE"):
        await link.call("LPUSH", key, "x")
    with pytest.raises(ReplyError, match="unknown command"):
        await link.call("NO-SUCH-COMMAND")
    assert await link.call("GET", key) == b"text"
    await link.call("DEL", key)


async def test_scripts_run_by_sha_and_again_after_redis_forgot_them() -> None:
    port = free_port()
    with private_redis(port):
        link = RedisLink(f"redis://127.0.0.1:{port}/0", timeout=2.0)
        script = Script("return {KEYS[1], ARGV[1], false, 3}")
        try:
            assert await link.run(script, ["k"], ["a"]) == [b"k", b"a", None, 3]
            assert await link.call("SCRIPT", "EXISTS", script.sha) == [1]
            await link.call("SCRIPT", "FLUSH")
            assert await link.run(script, ["k2"], [7]) == [b"k2", b"7", None, 3]
            with pytest.raises(ReplyError):
                await link.run(Script("return redis.call('NO-SUCH-COMMAND')"), [], [])
        finally:
            await link.aclose()


async def test_password_and_database_number_from_the_url() -> None:
    port = free_port()
    with private_redis(port, "--requirepass", "s3cret"):
        wrong = RedisLink(f"redis://:nope@127.0.0.1:{port}/0", timeout=2.0)
        with pytest.raises(ConnectionError):
            await wrong.call("PING")
        await wrong.aclose()
        link = RedisLink(f"redis://default:s3cret@127.0.0.1:{port}/3", timeout=2.0)
        try:
            await link.call("SET", "only-in-3", "yes")
            assert await link.call("GET", "only-in-3") == b"yes"
            in_zero = RedisLink(f"redis://:s3cret@127.0.0.1:{port}", timeout=2.0)
            assert await in_zero.call("GET", "only-in-3") is None
            await in_zero.aclose()
        finally:
            await link.aclose()


async def test_a_paused_redis_fails_every_waiting_call_within_the_timeout_and_is_used_again() -> None:
    port = free_port()
    with private_redis(port) as server:
        link = RedisLink(f"redis://127.0.0.1:{port}/0", timeout=0.5)
        try:
            assert await link.call("PING") == b"PONG"
            server.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            outcomes = await asyncio.gather(*(link.call("PING") for _ in range(50)), return_exceptions=True)
            waited = time.monotonic() - started
            assert all(isinstance(o, TimeoutError) for o in outcomes), outcomes[:3]
            assert waited < 5.0, waited  # about the timeout (0.5 s): a bound, never a hang
            # While it stays paused, a new call (a fresh connection) fails within the timeout too.
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(link.call("PING"), 5)
            server.send_signal(signal.SIGCONT)
            assert await link.call("PING") == b"PONG"
        finally:
            server.send_signal(signal.SIGCONT)
            await link.aclose()


async def test_a_restarted_redis_is_reconnected_on_the_next_call() -> None:
    port = free_port()
    link = RedisLink(f"redis://127.0.0.1:{port}/0", timeout=1.0)
    try:
        with pytest.raises(OSError):  # nothing listens yet: refused at once
            await link.call("PING")
        with private_redis(port):
            assert await link.call("PING") == b"PONG"
        with pytest.raises(OSError):  # stopped: the connection is gone
            await link.call("PING")
        with private_redis(port):
            assert await link.call("PING") == b"PONG"
    finally:
        await link.aclose()


def test_only_redis_urls() -> None:
    with pytest.raises(ValueError, match="redis://"):
        RedisLink("rediss://127.0.0.1:6379/0", timeout=1.0)
