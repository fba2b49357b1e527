"""A distributed guess cannot lock a user out of the browser and network they sign in from.

The attack is real to the server: each attacker connects from its own loopback address
(127.0.0.2-13, as different machines would) and sends no X-Forwarded-For, so the auth
service sees twelve peers. The service runs with the default limits (5 per account and
address, 20 per address, 50 per account from unknown sources); only the first wait past
the account's budget is set long, so that no assertion depends on how fast this machine is.
IPv6 cannot be routed to this machine, so IPv6 clients arrive as they would in a
deployment: in X-Forwarded-For from the gateway, a trusted proxy (here 127.0.0.254).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.auth.devices import COOKIE_NAME as DEVICE_COOKIE
from services.auth.devices import COOKIE_PATH as DEVICE_COOKIE_PATH
from tests.auth.conftest import AuthService, start_auth
from tests.auth.flows import PASSWORD, AuthFlows, authorization

USUAL = "127.0.0.1"  # where the user signs in from, day to day
ATTACKERS = [f"127.0.0.{n}" for n in range(2, 14)]
GATEWAY = "127.0.0.254"
PER_PAIR, PER_ACCOUNT = 5, 50


@pytest.fixture(scope="module")
async def auth_service(auth_db: tuple[str, str], log_dir: Path) -> AsyncIterator[AuthService]:
    settings = {
        "LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS": str(PER_PAIR),
        "LOGIN_MAX_FAILURES_PER_ADDRESS": "20",
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": str(PER_ACCOUNT),
        "LOGIN_DELAY_BASE_SECONDS": "300",
        "TRUSTED_PROXIES": GATEWAY,
    }
    async for service in start_auth(auth_db, log_dir, **settings):
        yield service


async def guess(flows: AuthFlows, email: str, password: str = "wrong password") -> httpx.Response:
    form = await flows.login_form(authorization())
    assert form.status_code == 200, form.text
    return await flows.submit_login(form.text, email, password)


def assert_waits(resp: httpx.Response) -> None:
    assert resp.status_code == 429, resp.text
    assert int(resp.headers["retry-after"]) >= 1
    assert "location" not in resp.headers


async def guess_from(service: AuthService, sources: list[str], email: str, rounds: int) -> list[httpx.Response]:
    """``rounds`` wrong passwords from each of ``sources`` in turn, each its own machine."""
    async with contextlib.AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(service.flows(source=source)) for source in sources]
        return [await guess(client, email) for _ in range(rounds) for client in clients]


async def test_sixty_guesses_from_twelve_addresses_do_not_lock_out_the_users_device_or_address(
    auth_service: AuthService, user: dict[str, Any]
) -> None:
    email = user["email"]
    async with auth_service.flows(source=USUAL) as usual:
        await usual.authorize(authorization(), email)  # once, from their usual browser and address

        answers = await guess_from(auth_service, ATTACKERS, email, rounds=5)
        # Fifty guesses pass (the account's budget for unknown sources), then they must wait.
        assert [r.status_code for r in answers] == [400] * PER_ACCOUNT + [429] * (60 - PER_ACCOUNT)
        for resp in answers[PER_ACCOUNT:]:
            assert_waits(resp)

        # The user's own browser at their usual address: in, with the right password.
        await usual.authorize(authorization(), email)
        device_cookie = usual.http.cookies.get(DEVICE_COOKIE)
        assert device_cookie

    # Another browser at the same address (no device cookie): the address is known.
    async with auth_service.flows(source=USUAL) as same_address:
        await same_address.authorize(authorization(), email)
    # Their own browser from somewhere new: its device cookie vouches for it.
    async with auth_service.flows(source="127.0.0.14") as travelling:
        travelling.http.cookies.set(DEVICE_COOKIE, device_cookie, domain="127.0.0.1", path=DEVICE_COOKIE_PATH)
        await travelling.authorize(authorization(), email)
    # A stranger's browser from a new address waits, even with the right password: that is
    # what keeps the attack from guessing on.
    async with auth_service.flows(source="127.0.0.15") as stranger:
        assert_waits(await guess(stranger, email, PASSWORD))

    # The user's sign-ins gave the attack nothing back: its addresses are still refused,
    # a fresh address too, and so is one carrying a device cookie of the attacker's own account.
    assert_waits((await guess_from(auth_service, ATTACKERS[:1], email, rounds=1))[0])
    assert_waits((await guess_from(auth_service, ["127.0.0.16"], email, rounds=1))[0])
    async with auth_service.flows(source="127.0.0.17") as own_account:
        mine = await own_account.register()
        await own_account.authorize(authorization(), mine["email"])
        assert own_account.http.cookies.get(DEVICE_COOKIE)
        assert_waits(await guess(own_account, email))


async def test_ipv6_addresses_of_one_64_share_one_budget(auth_service: AuthService, user: dict[str, Any]) -> None:
    statuses = []
    for n in range(1, PER_PAIR + 2):  # six addresses, one /64: its (account, address) limit is five
        async with auth_service.flows(address=f"2001:db8:7:8::{n:x}", source=GATEWAY) as rotating:
            statuses.append((await guess(rotating, user["email"])).status_code)
    assert statuses == [400] * PER_PAIR + [429]
    async with auth_service.flows(address="2001:db8:7:9::1", source=GATEWAY) as next_prefix:
        assert (await guess(next_prefix, user["email"])).status_code == 400


async def test_a_new_ipv6_privacy_address_in_the_users_64_is_still_their_known_address(
    auth_service: AuthService, user: dict[str, Any]
) -> None:
    email = user["email"]
    async with auth_service.flows(address="2001:db8:c:d:1111:2222:3333:4444", source=GATEWAY) as home:
        await home.authorize(authorization(), email)
    # Fifty guesses through the gateway from ten IPv4 addresses spend the account's budget.
    for n in range(10):
        async with auth_service.flows(address=f"198.51.100.{n + 1}", source=GATEWAY) as attacker:
            assert [(await guess(attacker, email)).status_code for _ in range(PER_PAIR)] == [400] * PER_PAIR
    async with auth_service.flows(address="198.51.100.200", source=GATEWAY) as attacker:
        assert_waits(await guess(attacker, email))
    # The user's host has picked a new temporary address in its /64 (no cookie in this browser).
    async with auth_service.flows(address="2001:db8:c:d:9999:8888:7777:6666", source=GATEWAY) as home:
        await home.authorize(authorization(), email)


async def test_a_direct_client_cannot_claim_an_address_with_x_forwarded_for(
    auth_service: AuthService, user: dict[str, Any]
) -> None:
    """Only the gateway's X-Forwarded-For is believed: a client naming the user's address is itself."""
    email = user["email"]
    async with auth_service.flows(source=USUAL) as usual:
        await usual.authorize(authorization(), email)
    await guess_from(auth_service, ATTACKERS[:10], email, rounds=5)
    async with auth_service.flows(address=USUAL, source="127.0.0.18") as forger:
        assert_waits(await guess(forger, email, PASSWORD))
