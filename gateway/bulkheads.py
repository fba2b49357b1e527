"""Caps on requests in flight: per upstream, per route, per client. Over a cap the answer is at once.

A request over a cap is never queued: it gets a problem at once with ``Retry-After``,
so one slow route, one slow service or one greedy client cannot make everybody
else wait (load shedding). The caps count requests in flight, not requests per
second: ten thousand fast requests a second pass where a thousand slow ones would
hold every connection.

- :class:`Bulkhead`: one upstream's (its connection pool is exactly as large, so a
  request that got in never waits for a pooled connection) or one route's. Over it:
  **503**.
- :class:`ClientSlots`: per client address and per token subject. Over it: **429**.
"""

from __future__ import annotations

from services.kit.problem import Problem

# Seconds a shed or throttled client is asked to wait: in-flight slots free up quickly.
RETRY_AFTER_SECONDS = 1


class Bulkhead:
    """At most ``cap`` requests in flight; the next one is refused, not queued."""

    def __init__(self, what: str, cap: int) -> None:
        self.what = what
        self.cap = cap
        self.in_flight = 0

    def acquire(self) -> None:
        """Take a slot (give it back with :meth:`release`), or raise :class:`Problem` 503 when none is free.

        A pair of calls rather than a context manager: a generator-based ``with`` costs a
        generator and two frames per request on the hot path.
        """
        if self.in_flight >= self.cap:
            raise Problem(
                503,
                f"{self.what} is at capacity ({self.cap} requests in flight); retry later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.in_flight += 1

    def release(self) -> None:
        self.in_flight -= 1


class ClientSlots:
    """Requests in flight per key (a client address, a token subject), at most ``cap`` each."""

    def __init__(self, kind: str, cap: int) -> None:
        self.kind = kind
        self.cap = cap
        self._in_flight: dict[str, int] = {}

    @property
    def enabled(self) -> bool:
        return self.cap > 0

    def in_flight(self, key: str) -> int:
        return self._in_flight.get(key, 0)

    def acquire(self, key: str) -> None:
        """Take a slot for ``key`` (give it back with :meth:`release`), or raise :class:`Problem` 429."""
        held = self._in_flight.get(key, 0)
        if held >= self.cap:
            raise Problem(
                429,
                f"too many requests in flight for this {self.kind} ({self.cap}); retry later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._in_flight[key] = held + 1

    def release(self, key: str) -> None:
        """Give back a slot of ``key``. Keys with nothing in flight are forgotten."""
        left = self._in_flight[key] - 1
        if left:
            self._in_flight[key] = left
        else:
            del self._in_flight[key]
