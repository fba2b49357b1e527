"""Streams through a real gateway process (gateway/streams.py) to real live instances."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live.conftest import Live
from tests.live.sse import open_stream
from tests.suite import launch_gateway
from tests.support import ServiceProcess, assert_problem


@pytest.fixture
def gateway_for(log_dir: Path) -> Iterator[Any]:
    started: list[ServiceProcess] = []

    def start(live: Live, **env: str) -> ServiceProcess:
        urls = ",".join(proc.url for proc in live.instances)
        settings: Mapping[str, str] = {"LIVE_URLS": urls, "AUTH_URL": live.issuer.issuer, **env}
        started.append(launch_gateway(log_dir, settings))
        return started[-1]

    yield start
    for proc in started:
        proc.stop()


async def test_events_arrive_while_the_upstream_stream_is_still_open(make_live: Any, gateway_for: Any) -> None:
    live = make_live(2)
    gateway = gateway_for(live)
    user = live.issuer.user()
    async with httpx.AsyncClient() as http, open_stream(http, gateway.url + "/live/events", user.token) as s:
        assert s.status == 200
        assert s.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert s.response.headers["x-request-id"]
        assert (await s.frame()).event == "ready"  # type: ignore[union-attr]
        for n in range(3):
            await live.publish("todo.created", user.id, {"n": n})
            (got,) = await s.events(1)  # each one before the next is even published
            assert got.json()["data"] == {"n": n}


async def test_a_stream_needs_a_token_at_the_edge(make_live: Any, gateway_for: Any) -> None:
    live = make_live(1)
    gateway = gateway_for(live)
    async with httpx.AsyncClient() as http, open_stream(http, gateway.url + "/live/events", None) as s:
        assert_problem(s.response, 401)


async def test_a_silent_upstream_is_ended_after_the_idle_timeout(make_live: Any, gateway_for: Any) -> None:
    live = make_live(1, LIVE_HEARTBEAT_SECONDS="300")
    gateway = gateway_for(live, GATEWAY_STREAM_IDLE_SECONDS="2")
    user = live.issuer.user()
    async with httpx.AsyncClient() as http, open_stream(http, gateway.url + "/live/events", user.token) as s:
        assert [f.event for f in await s.ended(timeout=20) if f.event != "retry"] == ["ready"]


async def test_heartbeats_keep_a_stream_open_past_the_idle_timeout(make_live: Any, gateway_for: Any) -> None:
    live = make_live(1, LIVE_HEARTBEAT_SECONDS="1")
    gateway = gateway_for(live, GATEWAY_STREAM_IDLE_SECONDS="3")
    user = live.issuer.user()
    async with httpx.AsyncClient() as http, open_stream(http, gateway.url + "/live/events", user.token) as s:
        beats = 0
        while beats < 8:  # well past 3 s of stream, heartbeats only
            frame = await s.frame(10, skip_heartbeats=False)
            assert frame is not None, "the gateway cut a stream that had heartbeats"
            beats += frame.event == "comment"


async def test_open_streams_per_client_address_are_capped(make_live: Any, gateway_for: Any) -> None:
    live = make_live(1)
    gateway = gateway_for(live, GATEWAY_MAX_STREAMS_PER_CLIENT="2")
    url = gateway.url + "/live/events"
    async with (
        httpx.AsyncClient() as http,
        open_stream(http, url, live.issuer.user().token) as one,
        open_stream(http, url, live.issuer.user().token) as two,
    ):
        assert (one.status, two.status) == (200, 200)
        async with open_stream(http, url, live.issuer.user().token) as three:
            assert_problem(three.response, 429)
            assert three.response.headers["retry-after"]


async def test_gateway_shutdown_ends_streams_with_closing(make_live: Any, gateway_for: Any) -> None:
    live = make_live(1)
    gateway = gateway_for(live, DRAIN_DELAY_SECONDS="0.5")
    user = live.issuer.user()
    async with httpx.AsyncClient() as http, open_stream(http, gateway.url + "/live/events", user.token) as s:
        assert (await s.frame()).event == "ready"  # type: ignore[union-attr]
        gateway.signal(signal.SIGTERM)
        rest = [f.event for f in await s.ended(timeout=15) if f.event not in {"comment", "retry"}]
    assert rest == ["closing"]
    assert gateway.proc.wait(20) == 0


STREAMS = 200
EVENTS_EACH = 3


async def test_a_killed_instances_clients_reconnect_and_miss_nothing(make_live: Any, gateway_for: Any) -> None:
    """200 streams over two instances; one is killed (SIGKILL) between events: every stream it
    held reconnects through the gateway with its Last-Event-ID, and every client gets each of
    its events exactly once, in order. The counts are printed."""
    live = make_live(2, LIVE_HEARTBEAT_SECONDS="2")
    gateway = gateway_for(live, GATEWAY_MAX_STREAMS_PER_CLIENT="1000", IN_FLIGHT_PER_ADDRESS="0")
    url = gateway.url + "/live/events"
    users = [live.issuer.user() for _ in range(STREAMS)]
    opened = asyncio.Event()
    ready_count = 0
    reconnects = 0
    received: dict[str, list[int]] = {user.id: [] for user in users}

    async def client(http: httpx.AsyncClient, token: str, user_id: str) -> None:
        nonlocal ready_count, reconnects
        last: str | None = None
        first = True
        while len(received[user_id]) < EVENTS_EACH:
            async with open_stream(http, url, token, last) as s:
                if s.status != 200:
                    await asyncio.sleep(0.5)
                    continue
                if not first:
                    reconnects += 1
                while (frame := await s.frame(60)) is not None:
                    if frame.event == "ready" and first:
                        first = False
                        ready_count += 1
                        if ready_count == STREAMS:
                            opened.set()
                    if frame.id is not None:
                        received[user_id].append(frame.json()["data"]["n"])
                        last = frame.id
                        if len(received[user_id]) == EVENTS_EACH:
                            return
            await asyncio.sleep(0.2)

    limits = httpx.Limits(max_connections=None, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits) as http:
        tasks = [asyncio.create_task(client(http, user.token, user.id)) for user in users]
        await asyncio.wait_for(opened.wait(), 60)
        await asyncio.gather(*(live.publish("todo.created", user.id, {"n": 0}) for user in users))
        while sum(len(v) for v in received.values()) < STREAMS:
            await asyncio.sleep(0.1)
        live.instances[0].proc.kill()  # SIGKILL: no drain, no goodbye
        for n in (1, 2):
            await asyncio.gather(*(live.publish("todo.updated", user.id, {"n": n}) for user in users))
        await asyncio.wait_for(asyncio.gather(*tasks), 60)
    missed = sum(EVENTS_EACH - len(set(v)) for v in received.values())
    print(f"streams={STREAMS} reconnected={reconnects} events={sum(len(v) for v in received.values())} missed={missed}")
    assert all(v == [0, 1, 2] for v in received.values())
    assert reconnects > 0  # the killed instance held some of them
