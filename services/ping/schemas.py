from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PingQuery(BaseModel):
    ECHOMSG: str = Field("", max_length=1024, description="Text to echo back.")


# /ping/delay waits at most this long, so a diagnostic cannot hold a connection for long.
MAX_DELAY_MS = 10_000


class DelayQuery(BaseModel):
    ms: int = Field(0, ge=0, le=MAX_DELAY_MS, description="How long to wait before answering, in milliseconds.")


class PingReply(BaseModel):
    message: str
    region: str
    instance: str
    time: datetime
