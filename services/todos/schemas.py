from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_CONTENT = 1000


def _trimmed_content(value: str) -> str:
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value):
        raise ValueError("content must not contain control characters")
    value = value.strip()
    if not 1 <= len(value) <= MAX_CONTENT:
        raise ValueError(f"content must be 1..{MAX_CONTENT} characters after trimming")
    return value


class TodoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(max_length=4 * MAX_CONTENT, description="1..1000 characters after trimming.")

    _check = field_validator("content")(_trimmed_content)


class TodoPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str | None = Field(None, max_length=4 * MAX_CONTENT)
    is_finished: bool | None = None

    @field_validator("content")
    @classmethod
    def _check(cls, value: str | None) -> str | None:
        return None if value is None else _trimmed_content(value)


class TodoListQuery(BaseModel):
    limit: int = Field(10, ge=1, le=100)
    cursor: str | None = Field(None, max_length=512)
    status: Literal["open", "finished", "all"] = "all"
    owner: UUID | None = Field(None, description="Whose todos (services with todos:read:any only).")


class Todo(BaseModel):
    id: UUID
    content: str
    is_finished: bool
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None


class TodoPage(BaseModel):
    items: list[Todo]
    next_cursor: str | None
