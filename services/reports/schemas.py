from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

ReportFormat = Literal["csv", "pdf", "json"]


class DayActivity(BaseModel):
    date: date
    created: int
    finished: int


class SummaryOut(BaseModel):
    total: int = Field(description="Todos that exist now.")
    open: int
    finished: int
    median_seconds_to_finish: float | None = Field(description="Over the finished todos that exist now.")
    per_day: list[DayActivity] = Field(description="The last 30 UTC days, oldest first.")
    updated_at: datetime | None = Field(description="When the last event changed these numbers.")


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: ReportFormat


class ReportListQuery(BaseModel):
    limit: int = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, max_length=512, description="`next_cursor` of the previous page.")


class Report(BaseModel):
    id: UUID
    format: ReportFormat
    status: Literal["queued", "running", "done", "failed"]
    progress: int = Field(description="0..100")
    todo_count: int | None
    error: str | None = Field(description="Why a failed report failed.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    file_url: str | None


class ReportList(BaseModel):
    items: list[Report]
    next_cursor: str | None = Field(None, description="The next page's cursor; null on the last page.")


class TodoEventData(BaseModel):
    """The todo as the todos service's events carry it (extra fields are ignored)."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    is_finished: bool
    created_at: AwareDatetime
    updated_at: AwareDatetime
    finished_at: AwareDatetime | None = None


class ReportRequested(BaseModel):
    """The ``report.requested`` event's data: what the worker needs to find the job."""

    job_id: UUID
    format: ReportFormat


class TodoItem(BaseModel):
    """A todo as the todos service lists it (what reports render)."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    content: str
    is_finished: bool
    created_at: AwareDatetime
    updated_at: AwareDatetime
    finished_at: AwareDatetime | None = None


class TodoPage(BaseModel):
    items: list[TodoItem]
    next_cursor: str | None = None
