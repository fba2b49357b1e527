"""The worker's view of the todos service: one user's todos, page by page, with a service token.

Every request has a timeout; a failed one (unreachable, timed out, 5xx, 429, or a
401 after which the cached token is dropped) is tried again with a doubling
backoff, up to ``fetch_attempts`` in all. Any other answer is final.

Every failure has two texts: a fixed, user-facing ``reason`` (shown in the report's
``error``) and a ``detail`` for the log, which may name hosts, ports and statuses the
user has no business seeing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from uuid import UUID

import aiohttp
from pydantic import ValidationError

from services.kit.logging import get_logger
from services.kit.security import ClientCredentialsTokenSource, TokenRequestFailed
from services.reports.config import ReportsSettings
from services.reports.schemas import TodoItem, TodoPage

log = get_logger("reports.todos_client")

# Called before each retry with (attempt that failed, attempts in all, the user-facing reason).
RetryHook = Callable[[int, int, str], Awaitable[None]]

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})

# The user-facing reasons, one per kind of failure.
UNREACHABLE = "the todos service could not be reached"
ERROR_ANSWER = "the todos service answered with an error"
NO_TOKEN = "the reports service could not get a token to read your todos"  # noqa: S105 - a message
REFUSED = "the todos service refused to hand over your todos"
UNREADABLE = "the todos service sent an answer this worker cannot read"


@dataclass(frozen=True)
class Miss:
    """One failed request: what the user is told, and what the log gets."""

    reason: str
    detail: str


class FetchFailed(Exception):
    """A fetch that ended without the todos; ``reason`` is safe to show, ``str()`` is for the log."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


class TodosUnavailable(FetchFailed):
    """The todos service (or the token endpoint) kept failing for the whole retry budget."""


class TodosRefused(FetchFailed):
    """The todos service gave a final answer that is not a page (a 4xx other than 401/408/429)."""


class TodosClient:
    def __init__(
        self, settings: ReportsSettings, session: aiohttp.ClientSession, tokens: ClientCredentialsTokenSource
    ) -> None:
        self._url = settings.todos_url.rstrip("/") + "/todos"
        self._page_size = settings.todos_page_size
        self._timeout = aiohttp.ClientTimeout(total=settings.fetch_timeout_seconds)
        self._attempts = settings.fetch_attempts
        self._backoff_min = settings.fetch_backoff_min_seconds
        self._backoff_max = settings.fetch_backoff_max_seconds
        self._session = session
        self._tokens = tokens

    async def pages(self, owner: UUID, on_retry: RetryHook | None = None) -> AsyncIterator[list[TodoItem]]:
        """Yield every page of ``owner``'s todos (newest first) until the last."""
        cursor: str | None = None
        while True:
            page = await self._page(owner, cursor, on_retry)
            yield page.items
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def _page(self, owner: UUID, cursor: str | None, on_retry: RetryHook | None) -> TodoPage:
        params = {"owner": str(owner), "limit": str(self._page_size)}
        if cursor:
            params["cursor"] = cursor
        for attempt in range(1, self._attempts + 1):
            miss = await self._try_page(params)
            if isinstance(miss, TodoPage):
                return miss
            if attempt == self._attempts:
                raise TodosUnavailable(
                    f"{miss.reason} ({attempt} attempts)", f"todos unavailable after {attempt} attempts: {miss.detail}"
                )
            delay = min(self._backoff_max, self._backoff_min * 2 ** (attempt - 1))
            log.warning("todos request failed; will retry", attempt=attempt, retry_in=delay, error=miss.detail)
            if on_retry is not None:
                await on_retry(attempt, self._attempts, miss.reason)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _try_page(self, params: dict[str, str]) -> TodoPage | Miss:
        """One request: the page, or why it failed (retryable); raises :class:`TodosRefused` when final."""
        try:
            headers = await self._tokens.authorization_header()
            async with self._session.get(self._url, params=params, headers=headers, timeout=self._timeout) as resp:
                if resp.status == 200:
                    return TodoPage.model_validate_json(await resp.read())
                if resp.status == 401:
                    self._tokens.invalidate()
                    return Miss(ERROR_ANSWER, "todos answered 401 (token refused; fetching a new one)")
                if resp.status in _RETRYABLE_STATUS:
                    return Miss(ERROR_ANSWER, f"todos answered {resp.status}")
                raise TodosRefused(REFUSED, f"todos refused the request: {resp.status} {(await resp.text())[:200]}")
        except TokenRequestFailed as error:
            return Miss(NO_TOKEN, f"no service token: {error}")
        except ValidationError as error:
            raise TodosRefused(UNREADABLE, f"todos answered an unreadable page: {error.error_count()} errors") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            return Miss(UNREACHABLE, f"todos unreachable: {type(error).__name__} {error}".strip())
