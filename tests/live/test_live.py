"""The live service on its own: real processes, the real broker and Redis, tokens of a test issuer."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from tests.live.sse import open_stream
from tests.support import ServiceProcess, assert_problem, free_port


async def test_a_stream_opens_with_ready_and_carries_only_the_callers_events(make_live: Any) -> None:
    live = make_live(2, LIVE_HEARTBEAT_SECONDS="1")
    alice, bob = live.issuer.user(), live.issuer.user()
    async with (
        httpx.AsyncClient() as http,
        open_stream(http, live.url(0), alice.token) as a,
        open_stream(http, live.url(1), bob.token) as b,
    ):
        assert a.status == 200
        assert a.response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert a.response.headers["cache-control"] == "no-store"
        assert a.response.headers["x-accel-buffering"] == "no"
        assert a.response.headers["x-request-id"]
        ready = await a.frame()
        assert ready is not None and ready.event == "ready"
        assert ready.json() == {"resumed": False, "window_seconds": 300}
        assert (await b.frame()) is not None
        await live.publish("todo.created", bob.id, {"content": "bob's"})
        await live.publish("todo.created", alice.id, {"content": "alice's"})
        (got,) = await a.events(1)
        assert got.event == "todo.created" and got.json()["data"] == {"content": "alice's"}
        assert got.json()["type"] == "todo.created" and uuid.UUID(got.json()["id"])
        (bobs,) = await b.events(1)
        assert bobs.json()["data"] == {"content": "bob's"}
        # A heartbeat comment arrives on an idle stream.
        beat = await a.frame(5, skip_heartbeats=False)
        assert beat is not None and beat.event == "comment"


async def test_scopes_choose_the_event_types(make_live: Any) -> None:
    live = make_live(1)
    user_id = str(uuid.uuid4())
    reports_only = live.issuer.token(user_id, "profile reports:read")
    async with httpx.AsyncClient() as http, open_stream(http, live.url(), reports_only) as s:
        await s.frame()
        await live.publish("todo.created", user_id)
        await live.publish("report.completed", user_id, {"id": "r1"})
        (got,) = await s.events(1)
        assert got.event == "report.completed"


async def test_resume_with_last_event_id_on_another_instance_misses_nothing(make_live: Any) -> None:
    live = make_live(2)
    user = live.issuer.user()
    async with httpx.AsyncClient() as http:
        async with open_stream(http, live.url(0), user.token) as first:
            await first.frame()
            await live.publish("todo.created", user.id, {"n": 0})
            (seen,) = await first.events(1)
        for n in range(1, 6):  # while the client is away
            await live.publish("todo.updated", user.id, {"n": n})
        async with open_stream(http, live.url(1), user.token, last_event_id=seen.id) as again:
            ready = await again.frame()
            assert ready is not None and ready.json()["resumed"] is True
            await live.publish("todo.deleted", user.id, {"n": 6})
            got = await again.events(6)
    assert [frame.json()["data"]["n"] for frame in got] == [1, 2, 3, 4, 5, 6]
    ids = [frame.id for frame in got]
    assert len(set(ids)) == 6 and seen.id not in ids


async def test_a_last_event_id_outside_the_window_resets(make_live: Any) -> None:
    live = make_live(1, LIVE_WINDOW_EVENTS="10")
    user = live.issuer.user()
    async with httpx.AsyncClient() as http:
        async with open_stream(http, live.url(), user.token, last_event_id="1000-0") as old:
            frames = [await old.frame(), await old.frame()]
        assert [f.event for f in frames if f] == ["ready", "reset"]
        assert frames[0] is not None and frames[0].json()["resumed"] is False
        assert frames[1] is not None and frames[1].json() == {"reason": "window"}
        async with open_stream(http, live.url(), user.token) as s:
            await s.frame()
            await live.publish("todo.created", user.id, {"n": 0})
            (mark,) = await s.events(1)
            for n in range(1, 13):  # more than the window holds
                await live.publish("todo.updated", user.id, {"n": n})
            await s.events(12)
        async with open_stream(http, live.url(), user.token, last_event_id=mark.id) as cut:
            assert [(await cut.frame()).event, (await cut.frame()).event] == ["ready", "reset"]  # type: ignore[union-attr]


async def test_a_stream_ends_with_expired_when_the_token_does(make_live: Any) -> None:
    live = make_live(1)
    user_id = str(uuid.uuid4())
    token = live.issuer.token(user_id, exp=int(time.time()) + 3)
    async with httpx.AsyncClient() as http, open_stream(http, live.url(), token) as s:
        rest = await s.ended(timeout=15)
    assert [f.event for f in rest if f.event not in {"comment", "retry"}] == ["ready", "expired"]


async def test_the_per_user_cap_answers_429_across_instances(make_live: Any) -> None:
    live = make_live(2, LIVE_MAX_STREAMS_PER_USER="2")
    user = live.issuer.user()
    async with (
        httpx.AsyncClient() as http,
        open_stream(http, live.url(0), user.token) as one,
        open_stream(http, live.url(1), user.token) as two,
    ):
        assert (one.status, two.status) == (200, 200)
        async with open_stream(http, live.url(0), user.token) as three:
            body = assert_problem(three.response, 429)
            assert three.response.headers["retry-after"]
            assert "too many open streams" in body["detail"]
        async with open_stream(http, live.url(1), live.issuer.user().token) as other_user:
            assert other_user.status == 200
    # Closed streams give their places back (released within a tick).
    deadline = time.monotonic() + 10
    async with httpx.AsyncClient() as http:
        while True:
            async with open_stream(http, live.url(1), user.token) as again:
                if again.status == 200 or time.monotonic() > deadline:
                    assert again.status == 200
                    break


async def test_bad_requests_are_problems(make_live: Any) -> None:
    live = make_live(1)
    user = live.issuer.user()
    async with httpx.AsyncClient() as http:
        async with open_stream(http, live.url(), user.token, last_event_id="not-an-id") as bad:
            assert "Last-Event-ID" in assert_problem(bad.response, 400)["detail"]
        async with open_stream(http, live.url(), None) as anonymous:
            assert_problem(anonymous.response, 401)
        async with open_stream(http, live.url(), user.token + "x") as forged:
            assert_problem(forged.response, 401)
        async with open_stream(http, live.url(), live.issuer.service_token("todos:read")) as service:
            assert_problem(service.response, 403)


async def test_user_deleted_ends_the_users_streams_on_every_instance(make_live: Any) -> None:
    live = make_live(2)
    user, other = live.issuer.user(), live.issuer.user()
    async with (
        httpx.AsyncClient() as http,
        open_stream(http, live.url(0), user.token) as a,
        open_stream(http, live.url(1), user.token) as b,
        open_stream(http, live.url(1), other.token) as c,
    ):
        for s in (a, b, c):
            await s.frame()
        await live.publish("user.deleted", user.id, {"user_id": user.id})
        assert [f.event for f in await a.ended()] == []
        assert [f.event for f in await b.ended()] == []
        await live.publish("todo.created", other.id)
        assert len(await c.events(1)) == 1  # the other user's stream goes on
        async with open_stream(http, live.url(0), user.token) as again:
            assert_problem(again.response, 403)


async def test_forged_malformed_and_repeated_events_are_not_delivered(make_live: Any) -> None:
    live = make_live(1)
    user = live.issuer.user()
    async with httpx.AsyncClient() as http, open_stream(http, live.url(), user.token) as s:
        await s.frame()
        await live.publish("todo.created", user.id, {"n": "forged"}, user_id=None)  # no validated producer
        await live.publish("todo.created", user.id, body=b"{not json")
        await live.publish("todo.created", "not-a-user", {"n": "no user"})
        twice = str(uuid.uuid4())
        await live.publish("todo.created", user.id, {"n": "once"}, event_id=twice)
        await live.publish("todo.created", user.id, {"n": "once"}, event_id=twice)
        await live.publish("todo.deleted", user.id, {"n": "last"})
        got = await s.events(2)
    assert [f.json()["data"]["n"] for f in got] == ["once", "last"]


async def test_without_redis_a_new_stream_is_503_and_readiness_says_why(make_live: Any) -> None:
    live = make_live(0)
    proc = ServiceProcess(
        "services.live",
        {**live.env_for(live.start_env()), "LIVE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"},
        live.log_dir / f"{live.queue_prefix}-no-redis.log",
    )
    live.instances.append(proc)
    proc.wait_ready("/healthz")
    async with httpx.AsyncClient() as http:
        ready = await http.get(proc.url + "/readyz")
        assert ready.status_code == 503 and "redis" in ready.text
        async with open_stream(http, proc.url + "/live/events", live.issuer.user().token) as s:
            assert s.response.headers["retry-after"]
            assert_problem(s.response, 503)
