"""Events: transactional outbox, relay, idempotent consumer, retries and dead letters.

- :data:`MIGRATIONS`: the ``event_outbox`` and ``event_inbox`` tables, for every
  service database that publishes or consumes.
- :func:`services.kit.events.outbox.add`: write an event in the caller's transaction.
- :class:`EventBus`: relay + consumer + broker connection of a service process.
- ``python -m services.kit.events dlq --service <name> [--replay]``: the dead letters.

Delivery is at-least-once; effects are exactly-once (the inbox de-duplicates by id).
"""

from __future__ import annotations

from pathlib import Path

from services.kit.events import outbox
from services.kit.events.broker import (
    alternate_exchange_name,
    dead_letter_queue,
    events_queue,
    retry_queue,
    unrouted_name,
)
from services.kit.events.bus import EventBus
from services.kit.events.envelope import DirectHandler, Event, Handler, MalformedEvent
from services.kit.events.options import EventOptions
from services.kit.events.producers import ProducerCheck
from services.kit.events.wiring import install
from services.kit.migrations import MigrationSource

MIGRATIONS = MigrationSource("kit.events", Path(__file__).parent / "migrations")

__all__ = [
    "MIGRATIONS",
    "DirectHandler",
    "Event",
    "EventBus",
    "EventOptions",
    "Handler",
    "MalformedEvent",
    "ProducerCheck",
    "alternate_exchange_name",
    "dead_letter_queue",
    "events_queue",
    "install",
    "outbox",
    "retry_queue",
    "unrouted_name",
]
