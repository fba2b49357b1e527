"""``python -m services.auth revoke-key KID``: an emergency stop for a signing key."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from services.kit.security import InvalidToken, TokenVerifier
from services.kit.security.verifier import unverified_header
from tests.auth.conftest import AuthService, start_auth
from tests.auth.test_keys import auth_command, published_kids, rotate_keys, service_token
from tests.commands import last_line
from tests.support import create_database, drop_database


def revoked(service: AuthService, *kids: str) -> str:
    """Run ``revoke-key``; returns the kid that signs afterwards."""
    return last_line(auth_command(service, "revoke-key", *kids))


@pytest.fixture
async def service(log_dir: Path) -> AsyncIterator[AuthService]:
    """A fresh auth database per test: each test revokes keys."""
    db = await create_database()
    try:
        async for running in start_auth(db, log_dir):
            yield running
    finally:
        await drop_database(db[0])


async def test_a_token_of_a_revoked_key_is_refused_by_a_verifier_that_had_cached_it(service: AuthService) -> None:
    async with service.flows() as flows, aiohttp.ClientSession() as session:
        token = await service_token(flows)
        kid = unverified_header(token)["kid"]
        jwks_url = f"{service.url}/.well-known/jwks.json"
        refreshes: list[dict[str, Any]] = []
        refreshed = asyncio.Event()

        async def fetch() -> Mapping[str, Any]:
            async with session.get(jwks_url) as resp:
                document = dict(await resp.json())
            refreshes.append(document)
            refreshed.set()
            return document

        # Verifiers as the services run them: the schedule refetches the JWKS, not only unknown kids.
        verifier = TokenVerifier(service.issuer, "quartet", jwks_url, fetch_jwks=fetch, refresh_seconds=0.2)
        assert (await verifier.verify(token)).client_id == "reports-worker"
        assert verifier.cache.get(token) is not None  # cached: the next check skips the signature

        successor = revoked(service, kid)  # it was the only key: a new one signs from now on
        assert successor != kid
        assert await published_kids(flows) == [successor]
        new_token = await service_token(flows)
        assert unverified_header(new_token)["kid"] == successor

        schedule = asyncio.create_task(verifier.keep_fresh())
        try:
            refreshed.clear()
            while not refreshes or kid in {k["kid"] for k in refreshes[-1]["keys"]}:
                await asyncio.wait_for(refreshed.wait(), timeout=10)
                refreshed.clear()
        finally:
            schedule.cancel()
        assert verifier.cache.get(token) is None
        with pytest.raises(InvalidToken, match="unknown key"):
            await verifier.verify(token)
        assert (await verifier.verify(new_token)).client_id == "reports-worker"

        # The issuer itself no longer vouches for it either.
        introspected = (await flows.introspect(token)).json()
        assert introspected == {"active": False}
        assert (await flows.introspect(new_token)).json()["active"] is True


async def test_revoking_the_signing_key_promotes_a_published_upcoming_key(service: AuthService) -> None:
    async with service.flows() as flows:
        current = unverified_header(await service_token(flows))["kid"]
        upcoming = rotate_keys(service, "--activate-in", "3600")
        assert revoked(service, current) == upcoming
        assert await published_kids(flows) == [upcoming]
        assert unverified_header(await service_token(flows))["kid"] == upcoming


async def test_revoking_a_retired_key_keeps_the_signing_key(service: AuthService) -> None:
    async with service.flows() as flows:
        old = unverified_header(await service_token(flows))["kid"]
        new = rotate_keys(service)
        assert set(await published_kids(flows)) == {old, new}
        assert revoked(service, old) == new
        assert await published_kids(flows) == [new]
        assert unverified_header(await service_token(flows))["kid"] == new


async def test_an_unknown_kid_is_an_error_and_changes_nothing(service: AuthService) -> None:
    async with service.flows() as flows:
        before = await published_kids(flows)
        done = auth_command(service, "revoke-key", "no-such-kid")
        assert done.returncode == 2 and "no signing key with kid no-such-kid" in done.stderr
        assert await published_kids(flows) == before
