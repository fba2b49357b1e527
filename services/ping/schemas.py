from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, field_validator
from pydantic.config import JsonDict
from pydantic_core import PydanticCustomError

from services.ping.state import ping_state

# The highest MAX_DELAY_MS the settings accept (services/ping/config.py): the model's fixed bound.
DELAY_CAP_MS = 60_000


class PingQuery(BaseModel):
    ECHOMSG: str = Field("", max_length=1024, description="Text to echo back.")


def _document_instance_bound(schema: JsonDict) -> None:
    # The document is built per request to /openapi.json: it states this instance's MAX_DELAY_MS.
    schema["maximum"] = ping_state().settings.max_delay_ms


class DelayQuery(BaseModel):
    ms: int = Field(
        0,
        ge=0,
        le=DELAY_CAP_MS,
        description="How long to wait before answering, in milliseconds.",
        json_schema_extra=_document_instance_bound,
    )

    @field_validator("ms")
    @classmethod
    def _within_instance_bound(cls, ms: int) -> int:
        bound = ping_state().settings.max_delay_ms
        if ms > bound:
            raise PydanticCustomError("less_than_equal", "Input should be less than or equal to {le}", {"le": bound})
        return ms


class PingReply(BaseModel):
    message: str
    region: str
    instance: str
    time: datetime
