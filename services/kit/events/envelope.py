"""The event envelope every Quartet service publishes and consumes.

On the wire an event is one JSON object::

    {"id": uuid, "type": "todo.created", "version": 1, "occurred_at": RFC 3339,
     "producer": "todos", "subject": user_id, "correlation_id": request_id, "data": {...}}

The routing key on the topic exchange is the ``type``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from services.kit.db import Connection

# Dotted lowercase words, so a type is also a valid topic routing key (``todo.created``).
TYPE_PATTERN = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"


class MalformedEvent(ValueError):
    """A message body that is not a valid envelope (not JSON, missing or mistyped fields)."""


class Event(BaseModel):
    """One event as published: immutable, validated strictly when read from the broker."""

    model_config = ConfigDict(frozen=True, strict=True, extra="ignore")

    id: UUID
    type: str = Field(pattern=TYPE_PATTERN, max_length=200)
    version: int = Field(ge=1)
    occurred_at: AwareDatetime
    producer: str = Field(min_length=1)
    subject: str
    correlation_id: str | None = None
    data: dict[str, Any]
    # Transport metadata, not part of the envelope on the wire: the W3C trace context stored
    # with the outbox row, which the relay sends as AMQP headers.
    trace_context: dict[str, str] = Field(default_factory=dict, exclude=True)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()

    @classmethod
    def from_json(cls, body: bytes) -> Event:
        """Parse and validate a message body; raises :class:`MalformedEvent`."""
        try:
            return cls.model_validate_json(body)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            raise MalformedEvent(problems[:500]) from None


# What a consuming service provides per event type. It runs inside the transaction
# that also records the event id in the inbox, so its effect happens exactly once.
Handler: TypeAlias = Callable[[Connection, Event], Awaitable[None]]

# A consumer without a database (:class:`services.kit.events.EventBus` built with ``db=None``)
# has no inbox: its handler is its own, and de-duplicates the event where it writes (Redis,
# say), answering False for an id it has already handled. Raising an ``OSError`` (such as
# ``ConnectionError``) means its store is unreachable: the event is requeued, not counted.
DirectHandler: TypeAlias = Callable[[Event], Awaitable[bool]]
