from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from services.kit.text import FREE_TEXT, has_control_characters

MAX_CONTENT = 1000


def _human_content(value: object) -> object:
    # Before the pattern (FREE_TEXT): the same refusals, said in words (the kit never shows a pattern).
    if isinstance(value, str):
        if has_control_characters(value, allow_layout=True):
            raise ValueError("content must not contain control characters (tab and line breaks are fine)")
        if value and not value.strip():
            raise ValueError("content must not be only whitespace")
    return value


def _trimmed_content(value: str) -> str:
    return value.strip()


class TodoCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str = Field(
        min_length=1,
        max_length=MAX_CONTENT,
        pattern=FREE_TEXT,
        description="1..1000 characters, not only whitespace, no control characters but tab and line breaks; "
        "stored trimmed.",
    )

    _human = field_validator("content", mode="before")(_human_content)
    _check = field_validator("content")(_trimmed_content)


class TodoPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    content: str | None = Field(None, min_length=1, max_length=MAX_CONTENT, pattern=FREE_TEXT)
    is_finished: bool | None = None

    _human = field_validator("content", mode="before")(_human_content)

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
