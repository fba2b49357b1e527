"""Brute-force limits on the login form, built so that a stranger cannot lock a user out.

Three counters in a fixed window, each with its own limit:

* per (account, address) — small (5): one address guessing one account;
* per address — 20: one address trying many accounts;
* per account over all addresses — large (50): a guess spread over many addresses.

Every attempt is counted *before* the password is checked, in atomic statements, so
parallel guesses cannot slip past a limit. An attempt refused by one of the first two
counters is not counted on the account's total: hammering from one address locks only
that address out of that account, and a targeted lockout needs on the order of
50 / 5 = 10 addresses within the window. Unknown accounts are counted exactly like
existing ones: the answer never tells whether an account exists. A successful login
clears its (account, address) counter and takes its own attempt back from the others.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from services.auth.config import AuthSettings
from services.auth.store import throttle as store
from services.kit.db import Connection


@dataclass(frozen=True)
class Attempt:
    pair_key: str
    address_key: str
    account_key: str
    retry_after: int | None  # seconds, when over a limit
    counted_on_account: bool = True


class LoginThrottle:
    def __init__(self, settings: AuthSettings) -> None:
        self._window = timedelta(seconds=settings.login_failure_window_seconds)
        self._limits = {
            "pair": settings.login_max_failures_per_account_and_address,
            "address": settings.login_max_failures_per_address,
            "account": settings.login_max_failures_per_account,
        }

    async def attempt(self, conn: Connection, email: str, address: str) -> Attempt:
        # Account keys are hashes: emails of accounts that do not exist are not kept in clear.
        digest = hashlib.sha256(email.encode()).hexdigest()
        pair, addr, account = f"pair:{digest}:{address}", "address:" + address, "account:" + digest
        counts = await store.count_attempt(conn, [pair, addr], self._window)
        retry_after = self._retry_after(counts)
        if retry_after is not None:
            return Attempt(pair, addr, account, retry_after, counted_on_account=False)
        counts = await store.count_attempt(conn, [account], self._window)
        return Attempt(pair, addr, account, self._retry_after(counts))

    def _retry_after(self, counts: dict[str, tuple[int, datetime]]) -> int | None:
        now = datetime.now(UTC)
        waits = [
            (start + self._window - now).total_seconds()
            for key, (attempts, start) in counts.items()
            if attempts > self._limits[key.split(":", 1)[0]]
        ]
        return max(1, math.ceil(max(waits))) if waits else None

    async def succeeded(self, conn: Connection, attempt: Attempt) -> None:
        await store.reset(conn, attempt.pair_key)
        await store.forget_attempt(conn, attempt.address_key)
        if attempt.counted_on_account:
            await store.forget_attempt(conn, attempt.account_key)

    async def forget_stale(self, conn: Connection) -> None:
        await store.delete_stale(conn, self._window)


def client_address(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: tuple[str, ...]) -> str:
    """The caller's address: X-Forwarded-For is believed only when it comes from a trusted proxy.

    ``trusted_proxies`` holds addresses or networks (``10.0.0.0/8``). Walking the list from
    the right, the first address that is not a trusted proxy is the client.
    """
    remote = remote_addr or "unknown"
    networks = _networks(trusted_proxies)
    if not forwarded_for or not _is_trusted(remote, networks):
        return remote
    for hop in reversed([part.strip() for part in forwarded_for.split(",")]):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return remote  # a malformed chain: fall back to the proxy's own address
        if not _is_trusted(hop, networks):
            return hop
    return remote


def _networks(entries: tuple[str, ...]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(entry, strict=False) for entry in entries]


def _is_trusted(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)
