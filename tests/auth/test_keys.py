"""Signing keys: rotation, publication until the last token expires, pruning."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest

from services.auth.signing import JWKS_MARGIN, generate_key, key_state
from services.auth.store.keys import KeyRow
from services.kit.security import InvalidToken, TokenVerifier
from services.kit.security.verifier import unverified_header
from tests.auth.conftest import AuthService
from tests.auth.flows import AuthFlows
from tests.commands import Done, last_line, run_python
from tests.suite import auth_env

TTL = timedelta(minutes=15)


def auth_command(auth_service: AuthService, *args: str) -> Done:
    """``python -m services.auth <args>`` with the settings (database, KEK) of ``auth_service``."""
    env = auth_env(auth_service.port, auth_service.dsn, auth_service.exchange)
    return run_python("-m", "services.auth", *args, env=env)


def rotate_keys(auth_service: AuthService, *args: str) -> str:
    """Run ``rotate-keys``; returns the kid of the new key."""
    return last_line(auth_command(auth_service, "rotate-keys", *args))


async def service_token(flows: AuthFlows) -> str:
    resp = await flows.client_credentials()
    assert resp.status_code == 200, resp.text
    return str(resp.json()["access_token"])


async def published_kids(flows: AuthFlows) -> list[str]:
    return [k["kid"] for k in (await flows.http.get("/.well-known/jwks.json")).json()["keys"]]


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    auth_service: AuthService, flows: AuthFlows
) -> None:
    old_token = await service_token(flows)
    old_kid = unverified_header(old_token)["kid"]

    new_kid = rotate_keys(auth_service)
    assert new_kid != old_kid
    new_token = await service_token(flows)
    assert unverified_header(new_token)["kid"] == new_kid
    assert set(await published_kids(flows)) == {old_kid, new_kid}

    async with aiohttp.ClientSession() as session:
        verifier = TokenVerifier(auth_service.issuer, "quartet", f"{auth_service.url}/.well-known/jwks.json", session)
        assert (await verifier.verify(old_token)).client_id == "reports-worker"
        assert (await verifier.verify(new_token)).client_id == "reports-worker"

        # Time passes: the new key has signed for longer than a token lives (plus the margin).
        await auth_service.fetch(
            "UPDATE signing_keys SET activated_at = activated_at - $1::interval",
            TTL + JWKS_MARGIN + timedelta(minutes=1),
        )
        assert await published_kids(flows) == [new_kid]
        fresh = TokenVerifier(auth_service.issuer, "quartet", f"{auth_service.url}/.well-known/jwks.json", session)
        with pytest.raises(InvalidToken, match="unknown key"):
            await fresh.verify(old_token)
        assert (await fresh.verify(new_token)).client_id == "reports-worker"

    # The next rotation deletes the key no token can need any more.
    third = rotate_keys(auth_service)
    kids = {r["kid"] for r in await auth_service.fetch("SELECT kid FROM signing_keys")}
    assert kids == {new_kid, third}


async def test_a_key_activated_later_is_published_before_it_signs(auth_service: AuthService, flows: AuthFlows) -> None:
    current = unverified_header(await service_token(flows))["kid"]
    upcoming = rotate_keys(auth_service, "--activate-in", "3600")
    assert upcoming in await published_kids(flows)
    assert unverified_header(await service_token(flows))["kid"] == current


def _row(kid: str, activated: datetime) -> KeyRow:
    key = generate_key("ES256")
    return KeyRow(kid, "ES256", None, {**key.as_dict(), "kid": kid}, activated, key.as_dict(private=True))


def test_key_state_publishes_a_retired_key_until_its_tokens_expire() -> None:
    now = datetime(2030, 1, 1, tzinfo=UTC)
    rows = [
        _row("a", now - timedelta(days=2)),
        _row("b", now - timedelta(minutes=10)),
        _row("c", now + timedelta(hours=1)),
    ]
    state = key_state(rows, TTL, now)
    assert state.current.kid == "b"
    assert [k["kid"] for k in state.published] == ["a", "b", "c"]  # a: retired 10 min ago; c: upcoming
    later = key_state(rows, TTL, now + timedelta(minutes=25))
    assert [k["kid"] for k in later.published] == ["b", "c"] and later.expired_kids == ("a",)
    assert json.dumps(state.published)  # plain JSON, no private members
    assert all("d" not in k for k in state.published)
