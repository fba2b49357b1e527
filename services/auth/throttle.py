"""Brute-force limits on the login form, built so that a stranger can neither guess on nor lock out.

Every attempt is judged by the *source* it comes from, worked out before the password:

* a **device** — it carries a valid device cookie for the account (set at an earlier
  successful sign-in, see :mod:`services.auth.devices`): counted on that device only
  (``device:<nonce>``, the per-(account, address) limit in a fixed window);
* a **known address** — the account signed in from this address key (an IPv4 address,
  an IPv6 /64) before: counted per (account, address) and per address, fixed windows;
* anything else, an **unknown** source: counted per (account, address) and per address
  like a known one, and, when those pass, on the account's budget for unknown sources.

The account's budget is a progressive delay, not a wall: the first
``login_max_failures_per_account`` attempts pass, then each further one must wait
``login_delay_base_seconds`` doubling per attempt (at most ``login_max_delay_seconds``)
after the last; earlier ones get 429 with ``Retry-After`` and are not counted. It only
forgets after a quiet window. Because devices and known addresses never spend or consult
it, failures from unknown sources cannot refuse the user's own browser or network, and
guessing from unknown sources is bounded per account however many addresses are used.

Every count is an atomic statement before the password is checked, so parallel guesses
cannot slip past a limit; an attempt refused by a per-(account, address) or per-address
counter is not counted on the account. Unknown accounts are counted exactly like existing
ones. A successful sign-in clears its own (account, address) or device counter, takes its
attempt back from the others, and remembers its address key for the account.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from uuid import UUID

from services.auth.config import AuthSettings
from services.auth.devices import DeviceCookies
from services.auth.store import throttle as store
from services.kit.db import Connection

KNOWN_ADDRESSES_KEPT = 20  # per account, the most recently used
NO_USER = UUID(int=0)


class Source(StrEnum):
    DEVICE = "device"
    KNOWN_ADDRESS = "known address"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Attempt:
    source: Source
    own_key: str  # "pair:…" or "device:…": cleared by a success
    address_key: str  # the client address's throttle key
    account_key: str
    retry_after: int | None  # seconds, when over a limit
    counted_on_address: bool = False
    counted_on_account: bool = False


class LoginThrottle:
    def __init__(self, settings: AuthSettings, devices: DeviceCookies) -> None:
        self._devices = devices
        self._window = timedelta(seconds=settings.login_failure_window_seconds)
        self._limits = {
            "pair": settings.login_max_failures_per_account_and_address,
            "device": settings.login_max_failures_per_account_and_address,
            "address": settings.login_max_failures_per_address,
        }
        self._account_free = settings.login_max_failures_per_account
        self._delay_base = settings.login_delay_base_seconds
        self._delay_max = settings.login_max_delay_seconds
        self._known_for = timedelta(days=settings.login_known_address_days)

    async def attempt(
        self, conn: Connection, email: str, address_key: str, user_id: UUID | None, device_cookie: str | None
    ) -> Attempt:
        """Count an attempt on ``email`` from ``address_key`` (see ``throttle_key``), before the password."""
        # Account keys are hashes: emails of accounts that do not exist are not kept in clear.
        digest = hashlib.sha256(email.encode()).hexdigest()
        account, address = "account:" + digest, "address:" + address_key
        device = self._devices.device_of(device_cookie, user_id) if user_id is not None else None
        if device is not None:
            counts = await store.count_attempt(conn, ["device:" + device], self._window)
            return Attempt(Source.DEVICE, "device:" + device, address_key, account, self._retry_after(counts))
        pair = f"pair:{digest}:{address_key}"
        # Asked for unknown accounts too (of a user id no row has): the same queries either way.
        known = await self._is_known(conn, user_id or NO_USER, address_key) and user_id is not None
        counts = await store.count_attempt(conn, [pair, address], self._window)
        retry_after = self._retry_after(counts)
        source = Source.KNOWN_ADDRESS if known else Source.UNKNOWN
        if retry_after is not None or known:
            return Attempt(source, pair, address_key, account, retry_after, counted_on_address=True)
        wait = await store.count_delayed_attempt(
            conn, account, self._window, self._account_free, self._delay_base, self._delay_max
        )
        if wait is not None:
            return Attempt(source, pair, address_key, account, max(1, math.ceil(wait)), counted_on_address=True)
        return Attempt(source, pair, address_key, account, None, counted_on_address=True, counted_on_account=True)

    async def _is_known(self, conn: Connection, user_id: UUID, address_key: str) -> bool:
        return self._known_for > timedelta(0) and await store.is_known_address(
            conn, user_id, address_key, self._known_for
        )

    def _retry_after(self, counts: dict[str, tuple[int, datetime]]) -> int | None:
        now = datetime.now(UTC)
        waits = [
            (start + self._window - now).total_seconds()
            for key, (attempts, start) in counts.items()
            if attempts > self._limits[key.split(":", 1)[0]]
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    async def succeeded(self, conn: Connection, attempt: Attempt, user_id: UUID) -> None:
        """A right password: clear the source's own counter, take the attempt back, remember the address."""
        await store.reset(conn, attempt.own_key)
        if attempt.counted_on_address:
            await store.forget_attempt(conn, "address:" + attempt.address_key)
        if attempt.counted_on_account:
            await store.forget_attempt(conn, attempt.account_key)
        if self._known_for > timedelta(0):
            await store.remember_address(conn, user_id, attempt.address_key, KNOWN_ADDRESSES_KEPT)

    async def forget_stale(self, conn: Connection) -> None:
        idle = self._window + timedelta(seconds=self._delay_max)
        await store.delete_stale(conn, idle, self._known_for)
