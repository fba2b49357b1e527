"""The consumer: handles events from ``<service>.events`` exactly once per effect.

Queues of a service (all durable, declared on every connect):

- ``<service>.events``: bound to the events exchange with each handled type as
  routing key; consumed with manual ack and ``prefetch`` unacked messages at most.
- ``<service>.events.retry.<N>ms``: one per retry delay; no consumer. A message
  waits there ``N`` ms (``x-message-ttl``), then RabbitMQ dead-letters it back to
  ``<service>.events`` through the default exchange.
- ``<service>.events.dlq``: what failed for good, with ``x-error``,
  ``x-attempts``, ``x-dead-letter-reason`` and ``x-failed-at`` headers. Inspect and
  replay it with ``python -m services.kit.events dlq --service <service>``.

Per message: parse the envelope (malformed, or a type/version without a handler:
straight to the DLQ); check that its producer, as RabbitMQ validated it (the AMQP
``user_id``), owns the event's type (else straight to the DLQ as
``unauthorised-producer``, see :mod:`services.kit.events.producers`); in one
transaction record the id in the inbox and run the handler (a recorded id means
a redelivery: skip); ack after the commit. When the handler raises, the
transaction rolls back and a copy goes to the next retry queue (or the DLQ after
the last), confirmed before the original is acked. While the database itself is
unreachable the message is put back after a pause without counting an attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, cast

import structlog
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage, AbstractQueue

from services.kit.config import ServiceSettings
from services.kit.db import UNAVAILABLE_ERRORS, Database
from services.kit.events import inbox
from services.kit.events.broker import (
    Broker,
    copy_message,
    dead_letter_queue,
    declare_exchange,
    events_queue,
    retry_queue,
)
from services.kit.events.envelope import TYPE_PATTERN, DirectHandler, Event, Handler, MalformedEvent
from services.kit.events.metrics import EventMetrics
from services.kit.events.options import EventOptions
from services.kit.events.producers import PRODUCER_HEADER, ProducerCheck
from services.kit.logging import get_logger

log = get_logger(__name__)

# Headers this module writes on retried and dead-lettered copies.
ATTEMPTS_HEADER = "x-attempts"
ERROR_HEADER = "x-error"
REASON_HEADER = "x-dead-letter-reason"
FAILED_AT_HEADER = "x-failed-at"
ROUTING_KEY_HEADER = "x-original-routing-key"
# RabbitMQ's own dead-lettering bookkeeping, dropped when we republish.
_BROKER_HEADERS = ("x-death", "x-first-death-exchange", "x-first-death-queue", "x-first-death-reason")
_MAX_ERROR_CHARS = 1000
_TYPE_RE = re.compile(TYPE_PATTERN)
_DB_UNAVAILABLE: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, TimeoutError)


def parse_handler_key(key: str) -> tuple[str, int]:
    """``"todo.created"`` handles version 1; ``"todo.created@2"`` handles version 2."""
    event_type, _, version = key.partition("@")
    if not _TYPE_RE.match(event_type) or (version and not version.isdigit()) or version == "0":
        raise ValueError(f"handler key {key!r} must look like 'todo.created' or 'todo.created@2'")
    return event_type, int(version or 1)


def attempts_of(message: AbstractIncomingMessage) -> int:
    value = (message.headers or {}).get(ATTEMPTS_HEADER, 0)
    return value if isinstance(value, int) and value >= 0 else 0


def _channel_open(message: AbstractIncomingMessage) -> bool:
    try:
        return not message.channel.is_closed
    except Exception:  # aio-pika raises when the delivering channel is closed
        return False


class _HandlerFailed(Exception):
    """The service's handler raised (as opposed to the database being unreachable)."""


class EventConsumer:
    """Consumes a service's queue and dispatches to its handlers."""

    def __init__(
        self,
        settings: ServiceSettings,
        db: Database | None,
        broker: Broker,
        metrics: EventMetrics,
        options: EventOptions,
        handlers: Mapping[str, Handler] | Mapping[str, DirectHandler],
    ) -> None:
        self._db = db
        self._metrics = metrics
        self._options = options
        self._routes = {parse_handler_key(key): handler for key, handler in handlers.items()}
        self._producers = ProducerCheck(settings.events_producers, settings.broker_user)
        self._exchange_name = settings.events_exchange
        prefix = settings.events_queue_name_prefix
        self._queue_name = events_queue(prefix)
        self._dlq_name = dead_letter_queue(prefix)
        self._retry_queues = [retry_queue(prefix, delay) for delay in options.retry_delays]
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._stopping = False
        self._in_flight: set[asyncio.Task[Any]] = set()
        broker.on_connect(self._setup)

    @property
    def queue_name(self) -> str:
        return self._queue_name

    async def _setup(self, connection: AbstractConnection) -> Sequence[AbstractChannel]:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self._options.prefetch)
        exchange = await declare_exchange(channel, self._exchange_name)
        queue = await channel.declare_queue(self._queue_name, durable=True)
        for event_type in sorted({event_type for event_type, _ in self._routes}):
            await queue.bind(exchange, routing_key=event_type)
        for name, delay in zip(self._retry_queues, self._options.retry_delays, strict=True):
            await channel.declare_queue(
                name,
                durable=True,
                arguments={
                    "x-message-ttl": round(delay * 1000),
                    "x-dead-letter-exchange": "",
                    "x-dead-letter-routing-key": self._queue_name,
                },
            )
        await channel.declare_queue(self._dlq_name, durable=True)
        self._channel, self._queue = channel, queue
        if not self._stopping:
            self._consumer_tag = await queue.consume(self._on_message)
            log.info("consuming events", queue=self._queue_name, types=sorted(t for t, _ in self._routes))
        return [channel]

    async def stop(self) -> None:
        """Stop consuming, let in-flight handlers finish (up to the grace), ack them."""
        self._stopping = True
        queue, tag = self._queue, self._consumer_tag
        if queue is not None and tag is not None and self._channel is not None and not self._channel.is_closed:
            with contextlib.suppress(Exception):
                await queue.cancel(tag, timeout=5)
        self._consumer_tag = None
        deadline = asyncio.get_running_loop().time() + self._options.shutdown_grace
        while self._in_flight:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                log.warning("event handlers still running at shutdown", count=len(self._in_flight))
                break
            await asyncio.wait(set(self._in_flight), timeout=remaining)

    # --- one message -----------------------------------------------------------------

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        try:
            if self._stopping:
                # Delivered after we stopped consuming: give it back untouched.
                await message.nack(requeue=True)
                return
            await self._process(message)
        except Exception as exc:
            # Never let one message take the consumer down. If the connection went away,
            # the broker gives the unacked message back after we reconnect; otherwise
            # (a retry or DLQ copy was refused, say) it is requeued after a pause.
            if not _channel_open(message):
                log.warning("broker connection lost while handling an event", error=f"{type(exc).__name__}: {exc}")
                return
            log.exception("event processing failed unexpectedly; message requeued")
            await asyncio.sleep(self._options.db_unavailable_pause)
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
        finally:
            if task is not None:
                self._in_flight.discard(task)

    async def _process(self, message: AbstractIncomingMessage) -> None:
        attempts = attempts_of(message)
        try:
            event = Event.from_json(message.body)
        except MalformedEvent as exc:
            await self._dead_letter(message, "malformed", f"malformed event: {exc}", attempts)
            return
        refusal = self._producers.refusal(event.type, self._producers.producer_of(message))
        if refusal is not None:
            await self._dead_letter(message, "unauthorised-producer", refusal, attempts)
            return
        handler = self._routes.get((event.type, event.version))
        if handler is None:
            error = f"no handler for {event.type} version {event.version}"
            await self._dead_letter(message, "unknown-type", error, attempts)
            return
        with structlog.contextvars.bound_contextvars(
            request_id=event.correlation_id, event_id=str(event.id), event_type=event.type
        ):
            try:
                first = await self._handle(event, handler)
            except _HandlerFailed as exc:
                await self._handler_failed(message, event, attempts + 1, exc.__cause__ or exc)
                return
            except _DB_UNAVAILABLE as exc:
                log.warning("database unavailable; event requeued", error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(self._options.db_unavailable_pause)
                await message.nack(requeue=True)
                return
            except Exception as exc:  # e.g. the commit failed on the handler's writes
                await self._handler_failed(message, event, attempts + 1, exc)
                return
            await message.ack()
            if first:
                self._metrics.consumed.labels(event.type).inc()
                log.debug("event handled", attempt=attempts + 1)
            else:
                self._metrics.duplicates.labels(event.type).inc()
                log.info("duplicate event skipped")

    async def _handle(self, event: Event, handler: Handler | DirectHandler) -> bool:
        if self._db is None:  # no inbox: the handler de-duplicates (see DirectHandler)
            return bool(await self._run(lambda: cast(DirectHandler, handler)(event)))
        async with self._db.transaction() as conn:
            if not await inbox.record(conn, event):
                return False
            await self._run(lambda: cast(Handler, handler)(conn, event))
        return True

    async def _run(self, call: Callable[[], Awaitable[Any]]) -> Any:
        deadline = asyncio.timeout(self._options.handler_timeout)
        try:
            async with deadline:
                return await call()
        except _DB_UNAVAILABLE as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                raise _HandlerFailed("the handler ran past its timeout") from exc
            raise  # a slow or unreachable store is not the event's fault: requeued, not counted
        except Exception as exc:
            raise _HandlerFailed(str(exc)) from exc

    async def _handler_failed(
        self, message: AbstractIncomingMessage, event: Event, attempts: int, error: BaseException
    ) -> None:
        self._metrics.failed.labels(event.type).inc()
        error_text = f"{type(error).__name__}: {error}"[:_MAX_ERROR_CHARS]
        if attempts <= len(self._retry_queues):
            delay = self._options.retry_delays[attempts - 1]
            await self._republish(
                message, self._retry_queues[attempts - 1], {ATTEMPTS_HEADER: attempts, ERROR_HEADER: error_text}
            )
            await message.ack()
            log.warning("event handler failed; will retry", attempt=attempts, retry_in=delay, error=error_text)
        else:
            await self._dead_letter(message, "handler-failed", error_text, attempts)
            log.error("event handler failed for good; dead-lettered", attempts=attempts, error=error_text)

    async def _dead_letter(self, message: AbstractIncomingMessage, reason: str, error: str, attempts: int) -> None:
        headers = {
            ATTEMPTS_HEADER: attempts,
            ERROR_HEADER: error[:_MAX_ERROR_CHARS],
            REASON_HEADER: reason,
            FAILED_AT_HEADER: datetime.now(UTC).isoformat(),
        }
        await self._republish(message, self._dlq_name, headers)
        await message.ack()
        self._metrics.dead_lettered.labels(reason).inc()
        if reason != "handler-failed":
            log.error("event dead-lettered", reason=reason, error=error, message_id=message.message_id)

    async def _republish(self, message: AbstractIncomingMessage, queue: str, headers: dict[str, Any]) -> None:
        """Put a copy of ``message`` on ``queue`` (default exchange), confirmed by the broker."""
        channel = self._channel
        if channel is None or channel.is_closed:
            raise RuntimeError("consumer channel is closed")
        merged = {k: v for k, v in (message.headers or {}).items() if k not in _BROKER_HEADERS}
        merged.setdefault(ROUTING_KEY_HEADER, message.routing_key or "")
        merged.update(headers)
        # The copy is ours (our user_id); who produced the original travels in a header.
        merged[PRODUCER_HEADER] = self._producers.producer_of(message) or ""
        await channel.default_exchange.publish(
            copy_message(message, merged, self._producers.own_user),
            routing_key=queue,
            mandatory=True,
            timeout=self._options.publish_timeout,
        )
