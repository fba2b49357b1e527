from __future__ import annotations

from collections.abc import AsyncIterator

from quart import Blueprint, Response, request

from services.kit.app import long_lived
from services.kit.security import authenticate, current_user_id
from services.live.hub import Hub
from services.live.schemas import last_event_id
from services.live.state import live_state
from services.live.subscriber import Subscriber

bp = Blueprint("live", __name__)

STREAM_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


@bp.get("/live/events")
async def live_events() -> Response:
    """The caller's events as Server-Sent Events (docs/live.md): ``todo.*`` with ``todos:read``,
    ``report.completed`` with ``reports:read``; resumes after ``Last-Event-ID`` within the window."""
    claims = await authenticate()
    user = str(current_user_id())
    after = last_event_id(request.headers.get("Last-Event-ID"))
    hub = live_state().hub
    subscriber, first = await hub.open(user, claims, after)
    response = Response(
        _body(hub, subscriber, first),
        status=200,
        content_type="text/event-stream; charset=utf-8",
        headers=STREAM_HEADERS,
    )
    return long_lived(response)


async def _body(hub: Hub, subscriber: Subscriber, first: bytes) -> AsyncIterator[bytes]:
    try:
        yield first
        while (chunk := await hub.next_chunk(subscriber)) is not None:
            yield chunk
    finally:
        hub.leave(subscriber)
