"""Brute-force limits on the login form: per account and per client address, no account hints."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.auth.conftest import AuthService, start_auth
from tests.auth.flows import PASSWORD, AuthFlows, Authorization, authorization

ACCOUNT_LIMIT = 3  # per (account, address)
ADDRESS_LIMIT = 6
ACCOUNT_TOTAL_LIMIT = 8  # per account, from every address together


@pytest.fixture(scope="module")
async def auth_service(auth_db: tuple[str, str], log_dir: Path) -> AsyncIterator[AuthService]:
    """This module's own auth process, with small limits so the tests stay short."""
    limits = {
        "LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS": str(ACCOUNT_LIMIT),
        "LOGIN_MAX_FAILURES_PER_ADDRESS": str(ADDRESS_LIMIT),
        "LOGIN_MAX_FAILURES_PER_ACCOUNT": str(ACCOUNT_TOTAL_LIMIT),
        # Past the account's total, attempts from unknown sources wait a minute or more
        # each: longer than any of these tests, so none of them depends on timing.
        "LOGIN_DELAY_BASE_SECONDS": "60",
        "LOGIN_MAX_DELAY_SECONDS": "200",
    }
    async for service in start_auth(auth_db, log_dir, **limits):
        yield service


async def attempts(
    flows: AuthFlows, email: str, password: str, count: int, auth: Authorization | None = None
) -> list[httpx.Response]:
    form = await flows.login_form(auth or authorization())
    return [await flows.submit_login(form.text, email, password) for _ in range(count)]


@pytest.fixture
async def other_flows(auth_service: AuthService) -> AsyncIterator[AuthFlows]:
    async with auth_service.flows() as f:
        yield f


async def test_repeated_wrong_passwords_lock_the_account_with_no_hint_it_exists(
    flows: AuthFlows, other_flows: AuthFlows, user: dict[str, Any]
) -> None:
    same_request = authorization()
    existing = await attempts(flows, user["email"], "wrong password", ACCOUNT_LIMIT + 2, same_request)
    ghost_email = f"ghost-{secrets.token_hex(4)}@example.com"
    unknown = await attempts(other_flows, ghost_email, "wrong password", ACCOUNT_LIMIT + 2, same_request)

    for answers in (existing, unknown):
        assert [r.status_code for r in answers] == [400] * ACCOUNT_LIMIT + [429, 429]
        assert all(int(r.headers["retry-after"]) > 0 for r in answers[ACCOUNT_LIMIT:])
    # Same status, same page, same headers whether the account exists or not.
    for mine, ghost in zip(existing, unknown, strict=True):
        assert mine.status_code == ghost.status_code
        # The form keeps the typed email (issue 25): compare with each one's email taken out.
        assert mine.text.replace(_csrf(mine), "").replace(user["email"], "EMAIL") == ghost.text.replace(
            _csrf(ghost), ""
        ).replace(ghost_email, "EMAIL")
        assert set(mine.headers) - {"date", "x-request-id", "content-length"} == set(ghost.headers) - {
            "date",
            "x-request-id",
            "content-length",
        }

    # While locked, even the right password gets 429 from the guessing address.
    locked = await attempts(flows, user["email"], PASSWORD, 1)
    assert locked[0].status_code == 429 and "location" not in locked[0].headers


async def test_guesses_from_one_address_do_not_lock_the_user_out_elsewhere(
    auth_service: AuthService, user: dict[str, Any]
) -> None:
    """A targeted lockout is expensive: one address over its limit blocks only itself.

    The guesser keeps going well past the per-account total; its refused attempts do not
    count against the account, so the real user still signs in from another address.
    """
    async with auth_service.flows(address="198.51.100.10") as attacker:
        answers = await attempts(attacker, user["email"], "wrong password", ACCOUNT_TOTAL_LIMIT + 3)
        assert [r.status_code for r in answers] == [400] * ACCOUNT_LIMIT + [429] * (
            ACCOUNT_TOTAL_LIMIT + 3 - ACCOUNT_LIMIT
        )
    async with auth_service.flows(address="198.51.100.11") as real_user:
        await real_user.authorize(authorization(), user["email"])


async def test_guesses_spread_over_many_addresses_hit_the_account_total(
    auth_service: AuthService, user: dict[str, Any]
) -> None:
    statuses: list[int] = []
    for n in range(4):  # 4 addresses x 3 guesses = 12 > ACCOUNT_TOTAL_LIMIT
        async with auth_service.flows(address=f"203.0.113.{20 + n}") as guesser:
            statuses += [r.status_code for r in await attempts(guesser, user["email"], "wrong", ACCOUNT_LIMIT)]
    assert statuses == [400] * ACCOUNT_TOTAL_LIMIT + [429] * (4 * ACCOUNT_LIMIT - ACCOUNT_TOTAL_LIMIT)
    # Now the account waits, from any address, even with the right password.
    async with auth_service.flows(address="203.0.113.99") as elsewhere:
        locked = await attempts(elsewhere, user["email"], PASSWORD, 1)
        assert locked[0].status_code == 429 and int(locked[0].headers["retry-after"]) > 0


async def test_past_the_account_total_each_guess_from_strangers_waits_longer_up_to_a_bound(
    auth_service: AuthService, user: dict[str, Any]
) -> None:
    """A progressive delay, not a wall: 60 s, then 120 s, then the 200 s cap, between guesses.

    Time is not waited out: the test moves the counter's last attempt back by the wait it
    was told, as if that long had passed, so nothing depends on this machine's speed.
    """
    account_key = "account:" + hashlib.sha256(user["email"].encode()).hexdigest()
    addresses = (f"203.0.114.{n}" for n in range(1, 100))  # a fresh one per guess: only the account limits
    for _ in range(ACCOUNT_TOTAL_LIMIT):
        async with auth_service.flows(address=next(addresses)) as guesser:
            assert (await attempts(guesser, user["email"], "wrong", 1))[0].status_code == 400

    waits = []
    for _ in range(3):
        async with auth_service.flows(address=next(addresses)) as guesser:
            early = (await attempts(guesser, user["email"], "wrong", 1))[0]
        assert early.status_code == 429
        waits.append(int(early.headers["retry-after"]))
        await auth_service.fetch(
            "UPDATE login_failures SET last_at = last_at - make_interval(secs => $2) WHERE key = $1 RETURNING key",
            account_key,
            float(waits[-1]),
        )
        async with auth_service.flows(address=next(addresses)) as guesser:  # its wait is over: one guess
            assert (await attempts(guesser, user["email"], "wrong", 1))[0].status_code == 400
    assert 55 <= waits[0] <= 60 and 115 <= waits[1] <= 120 and 195 <= waits[2] <= 200, waits


async def test_successful_login_resets_the_account_counter(flows: AuthFlows, user: dict[str, Any]) -> None:
    await attempts(flows, user["email"], "wrong password", ACCOUNT_LIMIT - 1)
    await flows.authorize(authorization(), user["email"])
    again = await attempts(flows, user["email"], "wrong password", ACCOUNT_LIMIT)
    assert [r.status_code for r in again] == [400] * ACCOUNT_LIMIT


async def test_many_accounts_from_one_address_hit_the_address_limit(
    auth_service: AuthService, user: dict[str, Any]
) -> None:
    async with auth_service.flows(address="192.0.2.77") as flows:
        statuses = []
        for _ in range(ADDRESS_LIMIT + 1):
            statuses += [r.status_code for r in await attempts(flows, f"u{secrets.token_hex(4)}@example.com", "x", 1)]
        assert statuses == [400] * ADDRESS_LIMIT + [429]
        # Another user's correct password from this address waits too.
        blocked = await attempts(flows, user["email"], PASSWORD, 1)
        assert blocked[0].status_code == 429
    # The account itself is not locked: from another address it signs in.
    async with auth_service.flows(address="192.0.2.78") as elsewhere:
        await elsewhere.authorize(authorization(), user["email"])


def _csrf(resp: httpx.Response) -> str:
    marker = 'name="csrf_token" value="'
    start = resp.text.index(marker) + len(marker)
    return resp.text[start : resp.text.index('"', start)]
