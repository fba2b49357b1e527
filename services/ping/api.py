from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from quart import Blueprint
from quart_schema import validate_querystring, validate_response

from services.kit.app import current_kit
from services.ping.schemas import DelayQuery, PingQuery, PingReply

bp = Blueprint("ping", __name__)

NO_STORE = {"Cache-Control": "no-store"}


def _reply(message: str) -> PingReply:
    settings = current_kit().settings
    return PingReply(message=message, region=settings.region, instance=settings.instance, time=datetime.now(UTC))


@bp.get("/ping")
@validate_querystring(PingQuery)
@validate_response(PingReply)
async def ping(query_args: PingQuery) -> tuple[PingReply, int, dict[str, str]]:
    """Echo ``ECHOMSG`` with the region and instance that answered; never cached."""
    return _reply(query_args.ECHOMSG), 200, NO_STORE


@bp.get("/ping/delay")
@validate_querystring(DelayQuery)
@validate_response(PingReply)
async def delayed_ping(query_args: DelayQuery) -> tuple[PingReply, int, dict[str, str]]:
    """Answer after ``ms`` milliseconds: a slow upstream on demand, for timeout diagnostics."""
    await asyncio.sleep(query_args.ms / 1000)
    return _reply(f"delayed {query_args.ms} ms"), 200, NO_STORE
