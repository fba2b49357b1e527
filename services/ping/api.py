from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from services.kit.app import handler_deadline
from services.ping.config import PingSettings
from services.ping.schemas import PingQuery, PingReply, delay_query
from services.ping.state import ping_state

NO_STORE = {"Cache-Control": "no-store"}


def _reply(message: str) -> PingReply:
    settings = ping_state().settings
    return PingReply(message=message, region=settings.region, instance=settings.instance, time=datetime.now(UTC))


def blueprint(settings: PingSettings) -> Blueprint:
    """The ping routes; ``/ping/delay``'s documented bound is this instance's ``MAX_DELAY_MS``."""
    bp = Blueprint("ping", __name__)
    delay = delay_query(settings.max_delay_ms)

    @bp.get("/ping")
    @validate_querystring(PingQuery)
    @validate_response(PingReply)
    async def ping(query_args: PingQuery) -> tuple[PingReply, int, dict[str, str]]:
        """Echo ``ECHOMSG`` with the region and instance that answered; never cached."""
        return _reply(query_args.ECHOMSG), 200, NO_STORE

    @bp.get("/ping/delay")
    @handler_deadline(lambda settings: settings.max_delay_ms / 1000 + 1)  # the gateway allows 12 s
    @validate_querystring(delay)
    @validate_response(PingReply)
    async def delayed_ping(query_args: Any) -> tuple[PingReply, int, dict[str, str]]:
        """Answer after ``ms`` milliseconds: a slow upstream on demand, for timeout diagnostics."""
        ms = int(query_args.ms)  # the model delay_query() built
        await asyncio.sleep(ms / 1000)
        return _reply(f"delayed {ms} ms"), 200, NO_STORE

    return bp
