"""The verified-token cache of :class:`~services.kit.security.verifier.TokenVerifier`.

A token's signature is checked once, then its claims are served from here — but only for
a bounded time (``ttl_seconds``, and never past the token's own ``exp``), and only while
the key that signed it is still published: when a JWKS refresh finds a ``kid`` gone, every
entry of that ``kid`` is dropped (:meth:`TokenCache.drop_kids`).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from services.kit.security.claims import Claims


@dataclass(frozen=True)
class _Entry:
    claims: Claims
    kid: str | None
    until: float


class TokenCache:
    """Verified claims by token string; the oldest go first past ``size``.

    An entry lives until ``min(exp, cached at + ttl_seconds)`` by ``clock`` (wall time,
    like ``exp``).
    """

    def __init__(self, size: int, clock: Callable[[], float] = time.time, ttl_seconds: float = 60.0) -> None:
        self._size = size
        self._clock = clock
        self._ttl = ttl_seconds
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str) -> Claims | None:
        entry = self._entries.get(token)
        if entry is None:
            return None
        if entry.until <= self._clock():
            del self._entries[token]
            return None
        return entry.claims

    def put(self, token: str, claims: Claims, kid: str | None = None) -> None:
        if self._size == 0 or self._ttl <= 0:
            return
        until = min(float(claims.exp), self._clock() + self._ttl)
        self._entries[token] = _Entry(claims, kid, until)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop_kids(self, kids: Iterable[str]) -> int:
        """Forget every token signed by one of ``kids`` (keys that left the JWKS); returns how many."""
        gone = set(kids)
        if not gone:
            return 0
        stale = [token for token, entry in self._entries.items() if entry.kid in gone]
        for token in stale:
            del self._entries[token]
        return len(stale)
