from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, create_model


class PingQuery(BaseModel):
    ECHOMSG: str = Field("", max_length=1024, description="Text to echo back.")


def delay_query(max_delay_ms: int) -> type[BaseModel]:
    """``/ping/delay``'s query, bounded by the configured ``MAX_DELAY_MS`` (so the document states it)."""
    return create_model(
        "DelayQuery",
        ms=(int, Field(0, ge=0, le=max_delay_ms, description="How long to wait before answering, in milliseconds.")),
    )


class PingReply(BaseModel):
    message: str
    region: str
    instance: str
    time: datetime
