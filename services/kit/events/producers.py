"""Who produced an event, as RabbitMQ vouches for it, and whether that producer owns its type.

The relay publishes every event with the AMQP ``user_id`` property set to its own
broker username; RabbitMQ refuses a publication whose ``user_id`` is not the
authenticated user of the connection, so a consumer can trust it. Each event type
prefix (``user`` of ``user.deleted``) has one owning broker user
(``settings.events_producers``); an event whose validated ``user_id`` is missing or
is not the owner of its type (the type in the body, which is what handlers are
chosen by, not the routing key) is refused and dead-lettered.

Copies the consumer republishes itself (retries, dead letters, replays from the DLQ)
carry the consumer's own ``user_id``; the producer the original was validated with
travels in the :data:`PRODUCER_HEADER` header, which is believed only on messages
whose ``user_id`` is the consumer's own broker user (nobody else can publish those).
"""

from __future__ import annotations

from collections.abc import Mapping

from aio_pika.abc import AbstractIncomingMessage

# On copies the consumer republishes: the validated user_id of the original ("" if it had none).
PRODUCER_HEADER = "x-producer-user-id"


def producer_of(message: AbstractIncomingMessage, own_user: str) -> str | None:
    """The broker user that produced ``message``, or None when nobody vouches for it."""
    user = message.user_id or None
    if user is not None and user == own_user:
        recorded = (message.headers or {}).get(PRODUCER_HEADER)
        if isinstance(recorded, bytes):
            recorded = recorded.decode(errors="replace")
        if isinstance(recorded, str):
            return recorded or None
    return user


class ProducerCheck:
    """Decides whether a delivered message's validated producer owns the event type in its body."""

    def __init__(self, owners: Mapping[str, str], own_user: str) -> None:
        self._owners = dict(owners)
        self.own_user = own_user

    def producer_of(self, message: AbstractIncomingMessage) -> str | None:
        return producer_of(message, self.own_user)

    def refusal(self, event_type: str, producer: str | None) -> str | None:
        """Why ``producer`` may not produce ``event_type``; None when it may."""
        prefix = event_type.partition(".")[0]
        owner = self._owners.get(prefix)
        if owner is None:
            return f"no broker user owns {prefix}.* events (settings.events_producers)"
        if producer is None:
            return f"{event_type} carries no validated user_id; only broker user {owner!r} may produce it"
        if producer != owner:
            return f"{event_type} may be produced only by broker user {owner!r}, not {producer!r}"
        return None
