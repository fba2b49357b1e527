"""One open stream (:class:`Subscriber`) and the live metrics; the hub (services/live/hub.py) holds them."""

from __future__ import annotations

import asyncio
import collections
import uuid
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.kit.security.claims import Claims
from services.live.feeds import StreamId

_LAG_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class LiveMetrics:
    def __init__(self, registry: CollectorRegistry, open_streams: Callable[[], int]) -> None:
        Gauge("live_streams_open", "Streams open on this instance.", registry=registry).set_function(open_streams)
        self.delivered = Counter(
            "live_events_delivered", "Events written to clients, by type.", ["type"], registry=registry
        )
        self.lag = Histogram(
            "live_delivery_lag_seconds",
            "From the event's occurred_at to its write to the client.",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self._delivered: dict[str, Any] = {}

    def count(self, event_type: str) -> None:
        child = self._delivered.get(event_type)
        if child is None:
            child = self._delivered[event_type] = self.delivered.labels(event_type)
        child.inc()


class Subscriber:
    """One open stream: what it may see, where it is, and the frames waiting to be written."""

    __slots__ = (
        "closed",
        "cursor",
        "expires_at",
        "frames",
        "id",
        "pending",
        "ready",
        "reports",
        "todos",
        "user",
        "wake",
    )

    def __init__(self, user: str, claims: Claims, cursor: StreamId) -> None:
        self.id = uuid.uuid4().hex
        self.user = user
        self.todos = "todos:read" in claims.scopes
        self.reports = "reports:read" in claims.scopes
        self.expires_at = float(claims.exp)
        self.cursor = cursor
        # (frame, event type or "", occurred at) in write order.
        self.frames: collections.deque[tuple[bytes, str, float]] = collections.deque()
        self.wake = asyncio.Event()
        self.closed = False
        self.ready = False  # until its catch-up read is in, the reader's entries wait in pending
        self.pending: list[tuple[StreamId, str, bytes, float]] = []

    def allows(self, event_type: str) -> bool:
        if event_type.startswith("todo."):
            return self.todos
        return event_type == "report.completed" and self.reports

    def offer(self, entry_id: StreamId, event_type: str, frame: bytes, occurred: float, limit: int) -> None:
        if self.closed:
            return
        if not self.ready:
            self.pending.append((entry_id, event_type, frame, occurred))
            return
        if entry_id <= self.cursor:
            return
        self.cursor = entry_id
        if self.allows(event_type):
            if len(self.frames) >= limit:  # a client this far behind reconnects and resumes
                self.close()
                return
            self.frames.append((frame, event_type, occurred))
            self.wake.set()

    def push(self, frame: bytes) -> None:
        if not self.closed:
            self.frames.append((frame, "", 0.0))
            self.wake.set()

    def close(self, last: bytes = b"") -> None:
        if not self.closed:
            if last:
                self.frames.append((last, "", 0.0))
            self.closed = True
            self.wake.set()
