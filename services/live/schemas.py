from __future__ import annotations

import re

from pydantic import BaseModel, Field

from services.kit.problem import Problem
from services.live.feeds import StreamId, parse_id

# A Redis stream id: milliseconds-sequence (bounded, so a header cannot be a large number).
_LAST_EVENT_ID = re.compile(r"^[0-9]{1,15}-[0-9]{1,12}$")


class Ready(BaseModel):
    """``event: ready``: whether the stream continues after the client's Last-Event-ID."""

    resumed: bool
    window_seconds: int


class Reset(BaseModel):
    """``event: reset``: events may have been missed (the Last-Event-ID is older than the window)."""

    reason: str = Field(description="'window'")


class EventData(BaseModel):
    """The ``data:`` of an event frame (its ``id:`` is the stream id, its ``event:`` the type)."""

    type: str
    id: str = Field(description="The event's uuid.")
    occurred_at: str
    data: dict[str, object]


def last_event_id(header: str | None) -> StreamId | None:
    """The ``Last-Event-ID`` header as a stream id; 400 problem when it is not one."""
    if header is None or not header.strip():
        return None
    if not _LAST_EVENT_ID.match(header.strip()):
        raise Problem(400, "Last-Event-ID must be an id this stream sent (like 1733230000000-0)")
    return parse_id(header.strip())
