"""A service's typed state and its named background tasks, through a bare kit app (no network needed)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from quart import Blueprint, Quart
from structlog.testing import capture_logs

from services.kit.app import create_service_app, kit_of
from services.kit.config import ServiceSettings
from services.kit.context import current_state
from services.kit.tasks import BackgroundTasks


@dataclass(frozen=True)
class DemoState:
    settings: ServiceSettings
    greeting: str


@dataclass(frozen=True)
class OtherState:
    pass


def make_app(state: object = None) -> Quart:
    bp = Blueprint("demo", __name__)

    @bp.get("/greeting")
    async def greeting() -> dict[str, str]:
        return {"greeting": current_state(DemoState).greeting}

    @bp.get("/other")
    async def other() -> dict[str, str]:
        current_state(OtherState)
        return {}

    settings = ServiceSettings(service_name="kit-test", port=0)
    return create_service_app(settings, blueprints=[bp], title="kit test", state=state or DemoState(settings, "hi"))


async def test_a_handler_reads_the_state_its_app_was_built_with() -> None:
    resp = await make_app().test_client().get("/greeting")
    assert (await resp.get_json()) == {"greeting": "hi"}


async def test_asking_for_another_kind_of_state_is_an_error_not_a_wrong_object() -> None:
    app = make_app()
    with pytest.raises(RuntimeError, match="OtherState"):
        kit_of(app).state_of(OtherState)
    assert (await app.test_client().get("/other")).status_code == 500


async def test_background_tasks_start_with_the_app_and_stop_newest_first_with_it() -> None:
    app = make_app()
    kit = kit_of(app)
    events: list[str] = []

    def forever(name: str) -> None:
        async def work() -> None:
            events.append(f"start {name}")
            try:
                await asyncio.Event().wait()
            finally:
                events.append(f"stop {name}")

        kit.run_in_background(name, work)

    forever("first")
    forever("second")

    async def stop_hook(_: object) -> None:
        events.append("stop hook")

    kit.on_stop.append(stop_hook)
    async with app.test_app():
        await asyncio.sleep(0.05)
        assert kit.tasks.names() == ["first", "second"]
    assert events == ["start first", "start second", "stop second", "stop first", "stop hook"]
    assert kit.tasks.names() == []


async def test_a_crashing_background_task_is_logged_with_its_name() -> None:
    tasks = BackgroundTasks()

    async def crash() -> None:
        raise ValueError("boom")

    with capture_logs() as logs:
        task = tasks.start("crasher", crash)
        await asyncio.wait({task})
        await asyncio.sleep(0)  # done callbacks run on the next loop turn
    crashed = [entry for entry in logs if entry["event"] == "background task crashed"]
    assert [entry["task"] for entry in crashed] == ["crasher"]
    assert isinstance(crashed[0]["exc_info"], ValueError)
    await tasks.stop(timeout=1)


async def test_a_task_name_runs_once_at_a_time() -> None:
    tasks = BackgroundTasks()
    tasks.start("only", wait_forever)
    with pytest.raises(RuntimeError, match="already running"):
        tasks.start("only", wait_forever)
    await tasks.stop(timeout=1)
    assert tasks.names() == []


async def wait_forever() -> None:
    await asyncio.Event().wait()
