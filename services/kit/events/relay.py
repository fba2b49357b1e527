"""The outbox relay: publishes committed outbox rows, marks them published after the confirm.

It wakes on ``NOTIFY`` (sent by :func:`outbox.add` when the writing transaction
commits) and polls every ``relay_poll_interval`` in case a notification was missed
(the listening connection was down, say). Each round, in one transaction: lock a
batch of due rows with ``FOR UPDATE SKIP LOCKED`` (so several instances share the
work without publishing a row twice at once), publish them all with publisher
confirms and ``mandatory``, then mark the confirmed ones published. The rest:

- unroutable (returned by the broker: no queue is bound to the type yet): retried
  with backoff, so a consumer that declares its queue later still gets it; after
  ``unroutable_window`` the row is marked discarded and kept until pruned;
- refused (negative confirm): retried with backoff, indefinitely;
- connection lost or timed out: left as it was, retried once the broker is back.

A crash between the confirm and the commit publishes the row again later: delivery
is at-least-once, and consumers de-duplicate by event id.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import aio_pika
import aiormq.exceptions
import asyncpg

from services.kit.config import ServiceSettings
from services.kit.db import UNAVAILABLE_ERRORS, Database
from services.kit.events import inbox, outbox
from services.kit.events.broker import Broker, BrokerUnavailable, wait_first
from services.kit.events.envelope import Event
from services.kit.events.metrics import EventMetrics
from services.kit.events.options import EventOptions
from services.kit.logging import get_logger
from services.kit.tracing import producer_span

log = get_logger(__name__)

_PENDING_REFRESH_SECONDS = 1.0
# Errors that mean "broker or database away for now": wait and try again, quietly.
_UNAVAILABLE: tuple[type[BaseException], ...] = (BrokerUnavailable, *UNAVAILABLE_ERRORS, TimeoutError)


def event_message(event: Event, user_id: str, *, headers: dict[str, Any] | None = None) -> aio_pika.Message:
    """The AMQP message carrying ``event`` (persistent; message_id is the event id).

    ``user_id`` is the publishing connection's broker user: RabbitMQ refuses any other,
    so consumers can trust it (:mod:`services.kit.events.producers`).
    """
    return aio_pika.Message(
        body=event.to_json(),
        content_type="application/json",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=str(event.id),
        correlation_id=event.correlation_id,
        type=event.type,
        app_id=event.producer,
        timestamp=event.occurred_at,
        user_id=user_id,
        headers=headers or {},
    )


class OutboxRelay:
    """Moves events from a service's outbox table to the events exchange."""

    def __init__(
        self,
        settings: ServiceSettings,
        db: Database,
        broker: Broker,
        metrics: EventMetrics,
        options: EventOptions,
    ) -> None:
        self._producer = settings.service_name
        self._broker_user = settings.broker_user
        self._db = db
        self._broker = broker
        self._metrics = metrics
        self._options = options
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._pending_refreshed_at = 0.0
        self._next_prune_at = 0.0

    async def start(self) -> None:
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name="events-relay"),
                asyncio.create_task(self._listen(), name="events-relay-listen"),
            ]

    async def stop(self) -> None:
        """Finish the batch in progress (up to the shutdown grace), then stop."""
        self._stopping.set()
        self._wake.set()
        if not self._tasks:
            return
        _, late = await asyncio.wait(self._tasks, timeout=self._options.shutdown_grace)
        for task in late:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def wake(self) -> None:
        self._wake.set()

    # --- the publishing loop -------------------------------------------------------

    async def _run(self) -> None:
        delay = self._options.reconnect_min
        while not self._stopping.is_set():
            self._wake.clear()
            claimed = 0
            try:
                await self._housekeeping()
                if not self._broker.ready():
                    await wait_first(self._stopping.wait(), self._broker.wait_ready(), timeout=_PENDING_REFRESH_SECONDS)
                    continue
                claimed, connection_failed = await self._publish_batch()
                if connection_failed:
                    raise BrokerUnavailable("publications failed")
                delay = self._options.reconnect_min
            except _UNAVAILABLE as exc:
                log.warning("outbox relay waiting", error=f"{type(exc).__name__}: {exc}", retry_in=delay)
                await wait_first(self._stopping.wait(), timeout=delay)
                delay = min(delay * 2, self._options.reconnect_max)
                continue
            except Exception:
                # Never let the relay die: the service keeps writing events regardless.
                log.exception("outbox relay round failed", retry_in=delay)
                await wait_first(self._stopping.wait(), timeout=delay)
                delay = min(delay * 2, self._options.reconnect_max)
                continue
            if claimed < self._options.relay_batch_size:
                with contextlib.suppress(*_UNAVAILABLE):
                    await self._refresh_pending()
                await wait_first(self._wake.wait(), timeout=self._options.relay_poll_interval)

    async def _publish_batch(self) -> tuple[int, bool]:
        """One round; returns (rows claimed, whether the connection failed under it)."""
        exchange = self._broker.exchange
        async with self._db.transaction() as conn:
            events = await outbox.claim_batch(conn, self._options.relay_batch_size, self._producer)
            if not events:
                return 0, False
            outcomes = await asyncio.gather(*(self._publish_one(exchange, event) for event in events))
            published = [event for event, outcome in zip(events, outcomes, strict=True) if outcome is None]
            failures = [
                outbox.Failure(event.id, outcome.error, outcome.unroutable)
                for event, outcome in zip(events, outcomes, strict=True)
                if outcome is not None and not outcome.unavailable
            ]
            await outbox.mark_published(conn, [event.id for event in published])
            discarded = await outbox.mark_failed(
                conn,
                failures,
                retry_min=self._options.publish_retry_min,
                retry_max=self._options.publish_retry_max,
                unroutable_window=self._options.unroutable_window,
            )
        now = datetime.now(UTC)
        for event in published:
            self._metrics.published.labels(event.type).inc()
            self._metrics.outbox_lag_seconds.observe(max(0.0, (now - event.occurred_at).total_seconds()))
        for failure in failures:
            self._metrics.publish_failed.labels("unroutable" if failure.unroutable else "refused").inc()
            log.warning("event not routed" if failure.unroutable else "event refused", event_id=str(failure.event_id))
        for event_id in discarded:
            self._metrics.publish_failed.labels("discarded").inc()
            log.error("event discarded: still unroutable after the unroutable window", event_id=str(event_id))
        unavailable = [o for o in outcomes if o is not None and o.unavailable]
        if unavailable:
            self._metrics.publish_failed.labels("unavailable").inc(len(unavailable))
        return len(events), bool(unavailable)

    async def _publish_one(self, exchange: aio_pika.abc.AbstractExchange, event: Event) -> _Outcome | None:
        started = time.perf_counter()
        try:
            # A child of the request that wrote the row; its context goes out as AMQP headers.
            with producer_span(f"{event.type} publish", event.trace_context, event_id=str(event.id)) as headers:
                await exchange.publish(
                    event_message(event, self._broker_user, headers=headers),
                    routing_key=event.type,
                    mandatory=True,
                    timeout=self._options.publish_timeout,
                )
        except aiormq.exceptions.PublishError:
            return _Outcome("unroutable: no queue is bound to this type", unroutable=True)
        except aiormq.exceptions.DeliveryError as exc:
            return _Outcome(f"refused by the broker: {exc}")
        except Exception as exc:  # connection lost, channel closed, confirm timed out
            return _Outcome(f"{type(exc).__name__}: {exc}", unavailable=True)
        self._metrics.publish_seconds.observe(time.perf_counter() - started)
        return None

    # --- pending gauge and pruning ---------------------------------------------------

    async def _housekeeping(self) -> None:
        now = time.monotonic()
        if now >= self._next_prune_at:
            self._next_prune_at = now + self._options.prune_interval
            async with self._db.connection() as conn:
                pruned_outbox = await outbox.prune(conn, self._options.retention)
                pruned_inbox = await inbox.prune(conn, self._options.retention)
            if pruned_outbox or pruned_inbox:
                log.info("events pruned", outbox=pruned_outbox, inbox=pruned_inbox)
        if now - self._pending_refreshed_at >= _PENDING_REFRESH_SECONDS:
            await self._refresh_pending()

    async def _refresh_pending(self) -> None:
        async with self._db.connection() as conn:
            pending, oldest_seconds = await outbox.pending_stats(conn)
        self._metrics.outbox_pending.set(pending)
        self._metrics.outbox_oldest_pending_seconds.set(oldest_seconds)
        self._pending_refreshed_at = time.monotonic()

    # --- LISTEN ----------------------------------------------------------------------

    async def _listen(self) -> None:
        """Keep a connection LISTENing for outbox notifications; reconnect with backoff."""
        delay = self._options.reconnect_min
        while not self._stopping.is_set():
            conn: asyncpg.Connection[asyncpg.Record] | None = None
            try:
                conn = await asyncpg.connect(self._db.dsn, timeout=self._options.connect_timeout)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _, lost=lost: lost.set())
                await conn.add_listener(outbox.NOTIFY_CHANNEL, self._on_notify)
                self._wake.set()  # rows written while nobody listened
                delay = self._options.reconnect_min
                while not self._stopping.is_set() and not lost.is_set():
                    await wait_first(self._stopping.wait(), lost.wait(), timeout=30)
                    if not self._stopping.is_set() and not lost.is_set():
                        await conn.fetchval("SELECT 1", timeout=10)  # notice a silently dead connection
                if lost.is_set():
                    raise ConnectionError("listening connection closed")
            except Exception as exc:
                log.warning("outbox listener disconnected", error=f"{type(exc).__name__}: {exc}", retry_in=delay)
            finally:
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(conn.close(), timeout=5)
            await wait_first(self._stopping.wait(), timeout=delay)
            delay = min(delay * 2, self._options.reconnect_max)

    def _on_notify(self, *_: object) -> None:
        self._wake.set()


class _Outcome:
    __slots__ = ("error", "unavailable", "unroutable")

    def __init__(self, error: str, *, unroutable: bool = False, unavailable: bool = False) -> None:
        self.error = error
        self.unroutable = unroutable
        self.unavailable = unavailable
