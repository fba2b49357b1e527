"""The proxy's own HTTP/1.1 client against a real aiohttp server in this process, and the health
checks' reading of a probe starved by load."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from gateway.balancer import Upstream
from gateway.config import GatewaySettings
from gateway.health_checks import HealthChecks
from gateway.metrics import GatewayMetrics
from gateway.upstream_client import BadAnswer, ConnectFailed, Connection, InstancePool, TimedOut
from tests.support import free_port


async def _chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for part in (b"one ", b"two ", b"three"):
        await response.write(part)
        await asyncio.sleep(0.01)
    await response.write_eof()
    return response


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("s", "1")))
    return web.Response(text="late")


async def _peer(request: web.Request) -> web.Response:
    assert request.transport is not None
    return web.Response(text=str(request.transport.get_extra_info("peername")[1]))


@pytest.fixture
async def server() -> AsyncIterator[InstancePool]:
    app = web.Application()
    app.router.add_get("/peer", _peer)
    app.router.add_get("/chunked", _chunked)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/readyz", _slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    pool = InstancePool("127.0.0.1", port, keepalive_seconds=30)
    try:
        yield pool
    finally:
        pool.close()
        await runner.cleanup()


def _head(pool: InstancePool, target: str, method: str = "GET") -> bytes:
    return f"{method} {target} HTTP/1.1\r\nHost: {pool.authority}\r\n\r\n".encode()


async def _get(pool: InstancePool, target: str) -> tuple[Connection, bytes]:
    conn = await pool.connection(1.0)
    conn.send(_head(pool, target), None, head_only=False)
    await conn.answer()
    body = await conn.read()
    pool.release(conn)
    return conn, body


async def test_a_kept_alive_connection_carries_the_next_exchange(server: InstancePool) -> None:
    first, port_one = await _get(server, "/peer")
    second, port_two = await _get(server, "/peer")
    assert first is second and port_one == port_two and first.status == 200


async def test_a_connection_idle_past_the_keep_alive_is_not_reused(server: InstancePool) -> None:
    first, _ = await _get(server, "/peer")
    first.idle_since -= 31
    second, _ = await _get(server, "/peer")
    assert first is not second and first.closed


async def test_a_chunked_answer_streams_to_its_end(server: InstancePool) -> None:
    conn = await server.connection(1.0)
    conn.send(_head(server, "/chunked"), None, head_only=False)
    await conn.answer()
    assert conn.content_length is None
    assert b"".join([chunk async for chunk in conn.chunks()]) == b"one two three"
    assert conn.reusable


async def test_a_head_answer_ends_without_a_body_and_its_connection_is_not_reused(server: InstancePool) -> None:
    conn = await server.connection(1.0)
    conn.send(_head(server, "/peer", "HEAD"), None, head_only=True)
    await conn.answer()
    assert conn.status == 200 and await conn.read() == b""
    assert not conn.reusable


async def test_the_deadline_ends_an_exchange_and_its_connection(server: InstancePool) -> None:
    conn = await server.connection(1.0)
    conn.send(_head(server, "/slow?s=2"), None, head_only=False)
    asyncio.get_running_loop().call_later(0.1, conn.expire)
    with pytest.raises(TimedOut):
        await conn.answer()
    assert conn.closed and not conn.reusable


async def test_nothing_listening_is_a_connect_failure() -> None:
    pool = InstancePool("127.0.0.1", free_port(), keepalive_seconds=30)
    with pytest.raises(ConnectFailed):
        await pool.connection(1.0)


async def test_an_answer_head_over_the_limits_is_refused() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\n" + b"X-Many: yes\r\n" * 200 + b"Content-Length: 0\r\n\r\n")
        await writer.drain()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0, family=socket.AF_INET)
    port = listener.sockets[0].getsockname()[1]
    pool = InstancePool("127.0.0.1", port, keepalive_seconds=30)
    try:
        conn = await pool.connection(1.0)
        conn.send(_head(pool, "/"), None, head_only=False)
        with pytest.raises(BadAnswer):
            await conn.answer()
    finally:
        pool.close()
        listener.close()


async def test_a_probe_starved_while_the_instance_answers_keeps_it_healthy(server: InstancePool) -> None:
    url = f"http://{server.authority}"
    settings = GatewaySettings(
        health_check_path="/readyz?s=0.5", health_check_timeout_seconds=0.1, health_check_failures=1
    )
    upstream = Upstream.of("ping", [url])
    instance = upstream.instances[0]
    async with aiohttp.ClientSession() as session:
        checks = HealthChecks(settings, [upstream], lambda: session, GatewayMetrics())

        async def answers_meanwhile() -> None:
            await asyncio.sleep(0.02)
            instance.finished(ok=True)

        await asyncio.gather(checks.check(upstream, instance), answers_meanwhile())
        assert instance.healthy
        await checks.check(upstream, instance)  # timed out and nothing answered: unhealthy
        assert not instance.healthy


async def test_an_answer_without_length_ends_with_its_connection() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(answer, "127.0.0.1", 0, family=socket.AF_INET)
    pool = InstancePool("127.0.0.1", listener.sockets[0].getsockname()[1], keepalive_seconds=30)
    try:
        conn = await pool.connection(1.0)
        conn.send(_head(pool, "/"), None, head_only=False)
        await conn.answer()
        assert b"".join([chunk async for chunk in conn.chunks()]) == b"until the end"
        assert not conn.reusable
    finally:
        pool.close()
        listener.close()
