from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PingQuery(BaseModel):
    ECHOMSG: str = Field("", max_length=1024, description="Text to echo back.")


class DelayQuery(BaseModel):
    ms: int = Field(0, ge=0, description="How long to wait before answering, in milliseconds.")


class PingReply(BaseModel):
    message: str
    region: str
    instance: str
    time: datetime
