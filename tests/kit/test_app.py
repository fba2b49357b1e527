"""The kit's app factory, exercised through Quart's test client (no network needed)."""

from __future__ import annotations

import asyncio

from quart import Blueprint, Quart

from services.kit.app import create_service_app, handler_deadline, kit_of
from services.kit.config import ServiceSettings
from services.kit.problem import Problem


def make_app() -> Quart:
    bp = Blueprint("boom", __name__)

    @bp.get("/boom")
    async def boom() -> str:
        raise RuntimeError("secret internal state: password=hunter2")

    @bp.get("/teapot")
    async def teapot() -> str:
        raise Problem(418, "short and stout", headers={"X-Extra": "1"})

    settings = ServiceSettings(service_name="kit-test", port=0)
    return create_service_app(settings, blueprints=[bp], title="kit test")


async def test_unhandled_error_is_problem_500_without_internal_detail() -> None:
    app = make_app()
    client = app.test_client()
    resp = await client.get("/boom", headers={"X-Request-ID": "rid-123"})
    assert resp.status_code == 500
    assert resp.content_type == "application/problem+json"
    body = await resp.get_json()
    assert body["request_id"] == "rid-123"
    assert resp.headers["X-Request-ID"] == "rid-123"
    text = await resp.get_data(as_text=True)
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text


async def test_raised_problem_keeps_status_detail_and_headers() -> None:
    client = make_app().test_client()
    resp = await client.get("/teapot")
    assert resp.status_code == 418
    body = await resp.get_json()
    assert body["detail"] == "short and stout"
    assert resp.headers["X-Extra"] == "1"


async def test_readyz_is_503_when_a_check_fails_and_200_when_it_recovers() -> None:
    app = make_app()
    healthy = {"value": False}

    async def broker() -> None:
        if not healthy["value"]:
            raise ConnectionError("down")

    kit_of(app).readiness_checks["broker"] = broker
    client = app.test_client()
    resp = await client.get("/readyz")
    assert resp.status_code == 503
    assert "broker" in (await resp.get_json())["detail"]
    healthy["value"] = True
    assert (await client.get("/readyz")).status_code == 200


async def test_readyz_is_503_while_draining() -> None:
    app = make_app()
    kit_of(app).draining = True
    resp = await app.test_client().get("/readyz")
    assert resp.status_code == 503


def test_a_client_credentials_token_is_never_a_user_even_with_a_uuid_client_id() -> None:
    from services.kit.security.claims import Claims

    client = "0b5c5b1e-8a57-4a0e-9a43-53a9d0f6f0e1"
    service = Claims(client, client, frozenset(), "j", 0, 0, "iss", ("quartet",), {})
    user = Claims("5f0f3a52-4f65-4f0a-9e1e-1c1f6d0f1a2b", "quartet-web", frozenset(), "j", 0, 0, "iss", ("q",), {})
    assert service.user_id is None
    assert str(user.user_id) == user.sub


async def test_a_handler_past_its_deadline_is_504_and_a_slow_handler_may_declare_a_longer_one() -> None:
    bp = Blueprint("deadlines", __name__)

    @bp.get("/slow")
    async def slow() -> str:
        await asyncio.sleep(0.5)
        return "late"

    @bp.get("/declared")
    @handler_deadline(lambda settings: settings.request_timeout_seconds * 10)
    async def declared() -> str:
        await asyncio.sleep(0.5)
        return "in time"

    settings = ServiceSettings(service_name="kit-test", port=0, request_timeout_seconds=0.1)
    client = create_service_app(settings, blueprints=[bp], title="kit test").test_client()
    resp = await client.get("/slow")
    assert resp.status_code == 504
    assert (await resp.get_json())["status"] == 504
    resp = await client.get("/declared")
    assert resp.status_code == 200 and await resp.get_data(as_text=True) == "in time"
