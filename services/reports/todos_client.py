"""The worker's view of the todos service: one user's todos, page by page, with a service token.

Every request has a timeout; a failed one (unreachable, timed out, 5xx, 429, or a
401 after which the cached token is dropped) is tried again with a doubling
backoff, up to ``fetch_attempts`` in all. Any other answer is final.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from uuid import UUID

import aiohttp
from pydantic import ValidationError

from services.kit.logging import get_logger
from services.kit.security import ClientCredentialsTokenSource, TokenRequestFailed
from services.reports.config import ReportsSettings
from services.reports.schemas import TodoItem, TodoPage

log = get_logger("reports.todos_client")

# Called before each retry with (attempt that failed, attempts in all, what went wrong).
RetryHook = Callable[[int, int, str], Awaitable[None]]

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class TodosUnavailable(Exception):
    """The todos service (or the token endpoint) kept failing for the whole retry budget."""


class TodosRefused(Exception):
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
            problem = await self._try_page(params)
            if isinstance(problem, TodoPage):
                return problem
            if attempt == self._attempts:
                raise TodosUnavailable(f"todos service unavailable after {attempt} attempts: {problem}")
            delay = min(self._backoff_max, self._backoff_min * 2 ** (attempt - 1))
            log.warning("todos request failed; will retry", attempt=attempt, retry_in=delay, error=problem)
            if on_retry is not None:
                await on_retry(attempt, self._attempts, problem)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _try_page(self, params: dict[str, str]) -> TodoPage | str:
        """One request: the page, or why it failed (retryable); raises :class:`TodosRefused` when final."""
        try:
            headers = await self._tokens.authorization_header()
            async with self._session.get(self._url, params=params, headers=headers, timeout=self._timeout) as resp:
                if resp.status == 200:
                    return TodoPage.model_validate_json(await resp.read())
                if resp.status == 401:
                    self._tokens.invalidate()
                    return "todos answered 401 (token refused; fetching a new one)"
                if resp.status in _RETRYABLE_STATUS:
                    return f"todos answered {resp.status}"
                raise TodosRefused(f"todos refused the request: {resp.status} {(await resp.text())[:200]}")
        except TokenRequestFailed as error:
            return f"no service token: {error}"
        except ValidationError as error:
            raise TodosRefused(f"todos answered a page this worker cannot read: {error.error_count()} errors") from None
        except (aiohttp.ClientError, TimeoutError) as error:
            return f"todos unreachable: {type(error).__name__} {error}".strip()
