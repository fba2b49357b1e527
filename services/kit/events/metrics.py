"""Prometheus metrics of the event bus, registered on the app's own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class EventMetrics:
    """Every metric of one :class:`~services.kit.events.EventBus`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.outbox_pending = Gauge(
            "outbox_pending", "Outbox events written but not yet confirmed by the broker", registry=registry
        )
        self.outbox_oldest_pending_seconds = Gauge(
            "outbox_oldest_pending_seconds",
            "Age of the oldest outbox event not yet confirmed by the broker (0 when none): the outbox lag",
            registry=registry,
        )
        self.queue_messages = Gauge(
            "events_queue_messages",
            "Messages ready in a queue this process consumes (events, retry, dead-letter, jobs)",
            ["queue"],
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "outbox_publish_seconds",
            "Time from publishing an event to the broker's confirm",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.outbox_lag_seconds = Histogram(
            "outbox_lag_seconds",
            "Time from writing an event in the outbox to the broker's confirm",
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.published = Counter("events_published", "Events confirmed by the broker", ["type"], registry=registry)
        self.publish_failed = Counter(
            "events_publish_failed",
            "Publications not confirmed (reason: unroutable, refused, unavailable, discarded)",
            ["reason"],
            registry=registry,
        )
        self.consumed = Counter("events_consumed", "Events handled, effect committed", ["type"], registry=registry)
        self.duplicates = Counter(
            "events_duplicate", "Redelivered events skipped by the inbox", ["type"], registry=registry
        )
        self.failed = Counter("events_failed", "Handler failures (each failed attempt)", ["type"], registry=registry)
        self.dead_lettered = Counter(
            "events_dead_lettered",
            "Messages moved to the dead-letter queue (reason: handler-failed, malformed, unknown-type)",
            ["reason"],
            registry=registry,
        )
        self.broker_connected = Gauge(
            "events_broker_connected", "1 while the broker connection is up", registry=registry
        )
