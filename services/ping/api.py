from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from quart import Blueprint, Response
from quart_schema import document_response

from services.kit.app import handler_deadline
from services.kit.type_adapters import validate_querystring
from services.ping.schemas import DelayQuery, PingQuery, PingReply
from services.ping.state import ping_state

bp = Blueprint("ping", __name__)

NO_STORE = {"Cache-Control": "no-store"}


def _reply(message: str) -> Response:
    # Built here from known types (no validation needed) and rendered by pydantic's own JSON
    # serializer: quart-schema's validate_response would dump it to a dict, then to JSON.
    settings = ping_state().settings
    reply = PingReply.model_construct(
        message=message, region=settings.region, instance=settings.instance, time=datetime.now(UTC)
    )
    return Response(reply.model_dump_json(), content_type="application/json", headers=NO_STORE)


@bp.get("/ping")
@validate_querystring(PingQuery)
@document_response(PingReply)
async def ping(query_args: PingQuery) -> Response:
    """Echo ``ECHOMSG`` with the region and instance that answered; never cached."""
    return _reply(query_args.ECHOMSG)


@bp.get("/ping/delay")
@handler_deadline(lambda settings: settings.max_delay_ms / 1000 + 1)  # the gateway allows 12 s
@validate_querystring(DelayQuery)
@document_response(PingReply)
async def delayed_ping(query_args: DelayQuery) -> Response:
    """Answer after ``ms`` milliseconds: a slow upstream on demand, for timeout diagnostics."""
    await asyncio.sleep(query_args.ms / 1000)
    return _reply(f"delayed {query_args.ms} ms")
