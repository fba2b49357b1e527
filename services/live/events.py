"""What live consumes (from its queue ``live.events``, competing consumers over the instances).

Each user's ``todo.*`` and ``report.completed`` events are appended to that user's feed
in Redis (:mod:`services.live.feeds`), de-duplicated there by event id, then acked;
``user.deleted`` deletes the feed and ends the user's open streams on every instance.
Live publishes nothing and has no database: these are the kit's direct handlers.
"""

from __future__ import annotations

from uuid import UUID

from services.kit.events import DirectHandler, Event
from services.kit.logging import get_logger
from services.live.feeds import Feeds

log = get_logger("live.events")

DELIVERED_TYPES = ("todo.created", "todo.updated", "todo.finished", "todo.deleted", "report.completed")


def _user_of(event: Event) -> str | None:
    try:
        return str(UUID(event.subject))
    except ValueError:
        log.warning("event without a user subject ignored", event_type=event.type)
        return None


def handlers(feeds: Feeds) -> dict[str, DirectHandler]:
    async def deliver(event: Event) -> bool:
        user = _user_of(event)
        return True if user is None else await feeds.add(user, event)

    async def user_deleted(event: Event) -> bool:
        user = _user_of(event)
        if user is not None:
            await feeds.delete_user(user)
            log.info("user's feed deleted", user_id=user)
        return True

    return {**dict.fromkeys(DELIVERED_TYPES, deliver), "user.deleted": user_deleted}
