"""One error shape for the whole suite: RFC 9457 ``application/problem+json``.

Handlers raise :class:`Problem`; the app factory renders it (and every other
error) once, in :mod:`services.kit.app`. The gateway renders the same body with
:func:`problem_body`.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

PROBLEM_CONTENT_TYPE = "application/problem+json"


class Problem(Exception):
    """An HTTP error to answer as problem+json.

    ``detail`` is shown to the client: never put internal state or secrets in it.
    """

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        type: str = "about:blank",
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail or title or str(status))
        self.status = status
        self.detail = detail
        self.title = title or status_title(status)
        self.type = type
        self.errors = errors
        self.headers = headers or {}


def status_title(status: int) -> str:
    """The standard reason phrase for ``status`` ("Error" when unknown)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_body(
    status: int,
    request_id: str,
    *,
    title: str | None = None,
    detail: str | None = None,
    type: str = "about:blank",
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON object of a problem response."""
    body: dict[str, Any] = {
        "type": type,
        "title": title or status_title(status),
        "status": status,
        "detail": detail or title or status_title(status),
        "request_id": request_id,
    }
    if errors:
        body["errors"] = errors
    return body
