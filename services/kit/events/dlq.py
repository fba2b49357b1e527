"""Inspect and replay a service's dead-letter queue (``<service>.events.dlq``).

Inspecting reads up to ``limit`` messages without removing them: they are held
unacknowledged while listed and given back when the channel closes. Replaying
moves each message to ``<service>.events`` (through the default exchange, so only
this service sees it again), with its attempt count reset, and removes it from
the DLQ only after the broker confirmed the copy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import aio_pika
import aiormq.exceptions
from aio_pika.abc import AbstractIncomingMessage

from services.kit.events.broker import copy_message, dead_letter_queue, events_queue
from services.kit.events.consumer import ATTEMPTS_HEADER, ERROR_HEADER, FAILED_AT_HEADER, REASON_HEADER
from services.kit.events.producers import PRODUCER_HEADER, producer_of

REPLAYED_HEADER = "x-replayed"
_DROPPED_ON_REPLAY = (ATTEMPTS_HEADER, ERROR_HEADER, REASON_HEADER, FAILED_AT_HEADER, "x-death")


class NoSuchQueue(LookupError):
    """The service has no dead-letter queue (it never consumed on this broker and exchange)."""


def describe(message: AbstractIncomingMessage) -> dict[str, Any]:
    """One dead letter as a JSON-ready dict: why it failed, how often, and its body."""
    headers = message.headers or {}
    try:
        body: Any = json.loads(message.body)
    except ValueError:
        body = message.body.decode("utf-8", errors="replace")

    def text(key: str) -> Any:
        value = headers.get(key)
        return value.decode(errors="replace") if isinstance(value, bytes) else value

    return {
        "message_id": message.message_id,
        "type": message.type,
        "reason": text(REASON_HEADER),
        "error": text(ERROR_HEADER),
        "attempts": headers.get(ATTEMPTS_HEADER),
        "failed_at": text(FAILED_AT_HEADER),
        "producer_user_id": text(PRODUCER_HEADER) if PRODUCER_HEADER in headers else message.user_id,
        "body": body,
    }


async def run(
    amqp_url: str, broker_user: str, service: str, *, replay: bool, limit: int, emit: Callable[[dict[str, Any]], None]
) -> int:
    """List (or replay) up to ``limit`` dead letters of ``service``; returns how many.

    ``broker_user`` is the user of ``amqp_url``: replayed copies carry it as ``user_id``
    and keep the producer the original was validated with, so a refused event stays refused.
    """
    connection = await aio_pika.connect(amqp_url, timeout=10)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        try:
            queue = await channel.declare_queue(dead_letter_queue(service), passive=True)
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise NoSuchQueue(f"no queue {dead_letter_queue(service)!r}") from None
        target = events_queue(service)
        count = 0
        while count < limit:
            message = await queue.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            count += 1
            entry = describe(message)
            if replay:
                headers = {k: v for k, v in (message.headers or {}).items() if k not in _DROPPED_ON_REPLAY}
                replayed = headers.get(REPLAYED_HEADER, 0)
                headers[REPLAYED_HEADER] = (replayed if isinstance(replayed, int) else 0) + 1
                headers[PRODUCER_HEADER] = producer_of(message, broker_user) or ""
                await channel.default_exchange.publish(
                    copy_message(message, headers, broker_user), routing_key=target, mandatory=True, timeout=10
                )
                await message.ack()
                entry["replayed_to"] = target
            emit(entry)
        # Inspected messages were never acked: closing the channel gives them back.
        await channel.close()
        return count
    finally:
        await connection.close()
