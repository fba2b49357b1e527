"""Brute-force limits on the login form: per account and per client address.

Every attempt is counted *before* the password is checked, in one atomic statement,
so parallel guesses cannot slip past the limit. Unknown accounts are counted exactly
like existing ones: the answer never tells whether an account exists. A successful
login clears its account's counter and takes its own attempt back from the address.
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
    account_key: str
    address_key: str
    retry_after: int | None  # seconds, when over a limit


class LoginThrottle:
    def __init__(self, settings: AuthSettings) -> None:
        self._window = timedelta(seconds=settings.login_failure_window_seconds)
        self._limits = {
            "account": settings.login_max_failures_per_account,
            "address": settings.login_max_failures_per_address,
        }

    async def attempt(self, conn: Connection, email: str, address: str) -> Attempt:
        # The account key is a hash: emails of accounts that do not exist are not kept in clear.
        account = "account:" + hashlib.sha256(email.encode()).hexdigest()
        addr = "address:" + address
        counts = await store.count_attempt(conn, [account, addr], self._window)
        now = datetime.now(UTC)
        waits = [
            (start + self._window - now).total_seconds()
            for key, (attempts, start) in counts.items()
            if attempts > self._limits[key.split(":", 1)[0]]
        ]
        retry_after = max(1, math.ceil(max(waits))) if waits else None
        return Attempt(account, addr, retry_after)

    async def succeeded(self, conn: Connection, attempt: Attempt) -> None:
        await store.reset(conn, attempt.account_key)
        await store.forget_attempt(conn, attempt.address_key)

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
