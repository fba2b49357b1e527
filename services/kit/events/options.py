"""Tuning of the event bus. Defaults suit production; tests shorten the delays."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EventOptions:
    """Knobs of the relay, the consumer and the broker connection (all times in seconds)."""

    # Consumer: unacked messages in flight per process (also the handler concurrency;
    # keep it at or below the database pool size).
    prefetch: int = 10
    # A failing handler is retried after each of these delays, then dead-lettered.
    retry_delays: tuple[float, ...] = (1.0, 10.0, 60.0)
    # A handler running longer than this counts as failed (and is retried).
    handler_timeout: float = 30.0
    # While the database is unreachable a message is put back after this pause,
    # without counting as a failed attempt.
    db_unavailable_pause: float = 2.0

    # Relay.
    relay_batch_size: int = 100
    relay_poll_interval: float = 5.0  # fallback when a NOTIFY is missed
    publish_timeout: float = 10.0
    # A refused or unroutable publication is retried after min * 2**attempts, capped at max.
    publish_retry_min: float = 1.0
    publish_retry_max: float = 60.0
    # An event nobody is bound to is retried this long, then marked discarded (kept until pruned).
    unroutable_window: float = 3600.0
    # Published (and discarded) outbox rows and inbox rows are deleted after this.
    retention: float = 7 * 24 * 3600.0
    prune_interval: float = 300.0

    # Broker connection.
    connect_timeout: float = 10.0
    reconnect_min: float = 0.5
    reconnect_max: float = 10.0

    # Graceful stop: how long in-flight handlers and the relay's batch may take.
    shutdown_grace: float = 10.0

    def __post_init__(self) -> None:
        if self.prefetch < 1 or self.relay_batch_size < 1:
            raise ValueError("prefetch and relay_batch_size must be at least 1")
        if any(d <= 0 for d in self.retry_delays):
            raise ValueError("retry delays must be positive")
        if self.reconnect_min <= 0 or self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect delays must satisfy 0 < min <= max")
        if self.publish_retry_min <= 0 or self.publish_retry_max < self.publish_retry_min:
            raise ValueError("publish retry delays must satisfy 0 < min <= max")
