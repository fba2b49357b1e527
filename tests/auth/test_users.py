"""Accounts: register, profile, delete (with its outbox events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aio_pika
import pytest

from tests.auth.conftest import AuthService
from tests.auth.flows import AuthFlows
from tests.support import AMQP_URL


@pytest.fixture(scope="module")
def auth_service(auth_in_process: AuthService) -> AuthService:
    return auth_in_process


def bearer(tokens: Mapping[str, object]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def test_register_normalises_the_email_and_hashes_the_password(
    auth_service: AuthService, flows: AuthFlows
) -> None:
    resp = await flows.http.post(
        "/auth/register", json={"email": "  Mixed.Case@Example.COM ", "password": "long enough", "name": " Ann "}
    )
    assert resp.status_code == 201, resp.text
    user = resp.json()
    assert user["email"] == "mixed.case@example.com" and user["name"] == "Ann"
    assert set(user) == {"id", "email", "name", "created_at"}
    rows = await auth_service.fetch("SELECT password_hash FROM users WHERE id = $1::uuid", user["id"])
    assert rows[0]["password_hash"].startswith("$argon2id$")

    taken = await flows.http.post("/auth/register", json={"email": "mixed.case@EXAMPLE.com", "password": "whatever12"})
    assert taken.status_code == 409
    assert taken.headers["content-type"].startswith("application/problem+json")


async def test_registration_publishes_user_registered(auth_service: AuthService, flows: AuthFlows) -> None:
    user = await flows.register()
    rows = await auth_service.fetch("SELECT subject, data::text FROM event_outbox WHERE type = 'user.registered'")
    events = {r["subject"]: json.loads(r["data"]) for r in rows}
    assert events[user["id"]]["user_id"] == user["id"]
    assert "email" not in events[user["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"email": "a@example.com", "password": "short"},
        {"email": "a@example.com", "password": "x" * 1025},
        {"email": "not-an-email", "password": "long enough"},
        {"email": "a@example.com"},
        {"password": "long enough"},
        {"email": "a@example.com", "password": "long enough", "name": "n" * 201},
    ],
)
async def test_invalid_registration_is_422(flows: AuthFlows, body: dict[str, Any]) -> None:
    resp = await flows.http.post("/auth/register", json=body)
    assert resp.status_code == 422
    assert resp.headers["content-type"].startswith("application/problem+json")
    assert "long enough" not in resp.text  # the password is never echoed
    # In words, per field, never a pattern (issue 25).
    problem = resp.json()
    assert problem["detail"].endswith(".") and "pattern" not in resp.text and "^[" not in resp.text
    assert all(e["msg"].startswith(e["field"]) for e in problem["errors"]), problem["errors"]


@pytest.mark.parametrize(
    ("body", "said"),
    [
        ({"email": "not-an-email", "password": "long enough"}, "Email is not an email address (name@example.com)."),
        ({"email": "a\u0007@example.com", "password": "long enough"}, "Email must not contain control characters."),
        ({"email": "a@example.com", "password": "short"}, "Password must be at least 8 characters long."),
        (
            {"email": "a@example.com", "password": "long enough", "name": "\u0001"},
            "Name must not contain control characters.",
        ),
        ({"password": "long enough"}, "Email is required."),
    ],
)
async def test_a_refused_registration_says_what_is_wrong(flows: AuthFlows, body: dict[str, Any], said: str) -> None:
    resp = await flows.http.post("/auth/register", json=body)
    assert resp.status_code == 422
    assert resp.json()["detail"] == said


async def test_password_of_1024_characters_is_accepted(flows: AuthFlows) -> None:
    await flows.register(password="p" * 1024)


async def test_me_needs_a_token_with_profile_scope(flows: AuthFlows, user: dict[str, Any]) -> None:
    anonymous = await flows.http.get("/auth/me")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    narrow = await flows.sign_in(user["email"], "todos:read")
    forbidden = await flows.http.get("/auth/me", headers=bearer(narrow))
    assert forbidden.status_code == 403 and "insufficient_scope" in forbidden.headers["www-authenticate"]
    tokens = await flows.sign_in(user["email"], "profile")
    me = await flows.http.get("/auth/me", headers=bearer(tokens))
    assert me.status_code == 200 and me.json() == user


async def test_deleting_the_account_publishes_user_deleted_and_ends_its_grants(
    auth_service: AuthService, flows: AuthFlows, user: dict[str, Any]
) -> None:
    tokens = await flows.sign_in(user["email"], "profile")
    resp = await flows.http.delete("/auth/me", headers=bearer(tokens))
    assert resp.status_code == 204

    rows = await auth_service.fetch(
        "SELECT subject, data::text, correlation_id FROM event_outbox WHERE type = 'user.deleted' AND subject = $1",
        user["id"],
    )
    assert len(rows) == 1
    assert json.loads(rows[0]["data"])["user_id"] == user["id"]
    assert rows[0]["correlation_id"] == resp.headers["x-request-id"]

    assert (await flows.http.get("/auth/me", headers=bearer(tokens))).status_code == 404
    assert (await flows.refresh(tokens["refresh_token"])).json()["error"] == "invalid_grant"
    assert (await flows.http.delete("/auth/me", headers=bearer(tokens))).status_code == 404
    # The email is free again and the old password no longer signs in.
    assert (await auth_service.fetch("SELECT 1 FROM users WHERE email = $1", user["email"])) == []


async def test_user_deleted_reaches_a_queue_bound_to_the_exchange(
    auth_service: AuthService, flows: AuthFlows, user: dict[str, Any]
) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(auth_service.exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        queue = await channel.declare_queue(exclusive=True)
        await queue.bind(exchange, routing_key="user.deleted")

        tokens = await flows.sign_in(user["email"], "profile")
        assert (await flows.http.delete("/auth/me", headers=bearer(tokens))).status_code == 204

        async with asyncio.timeout(15):
            while (message := await queue.get(fail=False)) is None:
                await asyncio.sleep(0.05)
        await message.ack()
        event = json.loads(message.body)
        assert event["type"] == "user.deleted" and event["producer"] == "auth"
        assert event["subject"] == user["id"] and event["data"]["user_id"] == user["id"]
