"""Typed calls to the suite's public API (docs/architecture.md has the contract).

``QuartetApi`` wraps an ``httpx.AsyncClient`` whose base URL is the gateway (or one
service: the paths are the same) and adds the bearer token. Each call returns the
body as the contract shapes it and raises :class:`ApiError` on any other status than
the one the contract promises; the raw ``httpx.Response`` stays one ``api.http``
away for callers that look at refusals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, TypedDict

import httpx

from quartet_client.errors import ApiError

ReportFormat = Literal["csv", "pdf", "json"]
TodoStatus = Literal["open", "finished", "all"]


class Todo(TypedDict):
    id: str
    content: str
    is_finished: bool
    created_at: str
    updated_at: str
    finished_at: str | None


class TodoPage(TypedDict):
    items: list[Todo]
    next_cursor: str | None


class DayActivity(TypedDict):
    date: str
    created: int
    finished: int


class Summary(TypedDict):
    total: int
    open: int
    finished: int
    median_seconds_to_finish: float | None
    per_day: list[DayActivity]
    updated_at: str | None


class Report(TypedDict):
    id: str
    format: ReportFormat
    status: Literal["queued", "running", "done", "failed"]
    progress: int
    todo_count: int | None
    error: str | None
    created_at: str
    started_at: str | None
    finished_at: str | None
    file_url: str | None


class ReportList(TypedDict):
    items: list[Report]


class Pong(TypedDict):
    message: str
    region: str
    instance: str
    time: str


class Profile(TypedDict):
    id: str
    email: str
    name: str | None
    created_at: str


class QuartetApi:
    """The public API with one caller's access token (``token=None``: only the public routes)."""

    def __init__(self, http: httpx.AsyncClient, token: str | None = None) -> None:
        self.http = http
        self.token = token

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        auth = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return auth | dict(extra or {})

    async def _call(
        self,
        method: str,
        path: str,
        expect: int,
        *,
        json: object = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        resp = await self.http.request(method, path, json=json, params=params, headers=self._headers(headers))
        if resp.status_code != expect:
            raise ApiError(f"{method} {path}", resp)
        return resp

    # todos ----------------------------------------------------------------------------------------

    async def list_todos(self, *, limit: int = 10, cursor: str | None = None, status: TodoStatus = "all") -> TodoPage:
        params: dict[str, str | int] = {"limit": limit, "status": status} | ({"cursor": cursor} if cursor else {})
        page: TodoPage = (await self._call("GET", "/todos", 200, params=params)).json()
        return page

    async def all_todos(self, *, status: TodoStatus = "all") -> list[Todo]:
        """Every todo of the caller, page after page (newest first)."""
        items: list[Todo] = []
        cursor: str | None = None
        while True:
            page = await self.list_todos(limit=100, cursor=cursor, status=status)
            items += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                return items

    async def create_todo(self, content: str, *, idempotency_key: str | None = None) -> Todo:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        todo: Todo = (await self._call("POST", "/todos", 201, json={"content": content}, headers=headers)).json()
        return todo

    async def get_todo(self, todo_id: str) -> Todo:
        todo: Todo = (await self._call("GET", f"/todos/{todo_id}", 200)).json()
        return todo

    async def patch_todo(
        self, todo_id: str, *, content: str | None = None, is_finished: bool | None = None, if_match: str | None = None
    ) -> Todo:
        body = {k: v for k, v in (("content", content), ("is_finished", is_finished)) if v is not None}
        headers = {"If-Match": if_match} if if_match else None
        todo: Todo = (await self._call("PATCH", f"/todos/{todo_id}", 200, json=body, headers=headers)).json()
        return todo

    async def finish_todo(self, todo_id: str) -> Todo:
        todo: Todo = (await self._call("PUT", f"/todos/{todo_id}/finish", 200)).json()
        return todo

    async def delete_todo(self, todo_id: str) -> None:
        await self._call("DELETE", f"/todos/{todo_id}", 204)

    # reports --------------------------------------------------------------------------------------

    async def summary(self) -> Summary:
        summary: Summary = (await self._call("GET", "/reports/summary", 200)).json()
        return summary

    async def request_report(self, format: ReportFormat) -> Report:
        report: Report = (await self._call("POST", "/reports", 202, json={"format": format})).json()
        return report

    async def list_reports(self, *, limit: int = 20) -> ReportList:
        reports: ReportList = (await self._call("GET", "/reports", 200, params={"limit": limit})).json()
        return reports

    async def get_report(self, report_id: str) -> Report:
        report: Report = (await self._call("GET", f"/reports/{report_id}", 200)).json()
        return report

    async def report_file(self, report_id: str) -> httpx.Response:
        """The rendered file (``resp.content``, ``resp.headers["content-type"]``)."""
        return await self._call("GET", f"/reports/{report_id}/file", 200)

    # ping and auth --------------------------------------------------------------------------------

    async def ping(self, message: str = "") -> Pong:
        pong: Pong = (await self._call("GET", "/ping", 200, params={"ECHOMSG": message})).json()
        return pong

    async def me(self) -> Profile:
        profile: Profile = (await self._call("GET", "/auth/me", 200)).json()
        return profile

    async def delete_me(self) -> None:
        """Delete the caller's account; every service purges its data (event ``user.deleted``)."""
        await self._call("DELETE", "/auth/me", 204)
