"""The first page of each user's list, cached in Redis for every instance (services.kit.cache).

The hook in ``api.py`` is small: ``first_page`` for a read without a cursor, ``respond`` for
every page (ETag, ``If-None-Match`` → 304, ``Cache-Control: private, no-cache``) and
``changed`` after every write's commit. Why it sits in todos and not in the gateway, and how
it stays correct, is docs/caching.md.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from quart import Response, request

from services.kit.cache import CachedPage, CacheSettings, PageCache
from services.todos.config import TodosSettings

# Browsers may keep a page (it is the caller's own, never a shared cache's) but must revalidate
# it every time: a 304 costs a round trip and no body, a stale list costs trust.
CACHE_CONTROL = "private, no-cache"


def build(settings: TodosSettings) -> PageCache:
    return PageCache(
        CacheSettings(
            url=settings.cache_redis_url,
            prefix=settings.cache_key_prefix,
            page_ttl_seconds=settings.cache_page_ttl_seconds,
            timeout_seconds=settings.cache_timeout_seconds,
            retry_after_seconds=settings.cache_retry_after_seconds,
            lock_ttl_seconds=settings.cache_lock_ttl_seconds,
            lock_wait_seconds=settings.cache_lock_wait_seconds,
        )
    )


async def first_page(
    pages: PageCache, owner: UUID, status: str, limit: int, load: Callable[[], Awaitable[bytes]]
) -> CachedPage:
    """The first page of ``owner``'s list with ``status`` and ``limit``: cached, or loaded once."""
    return await pages.get(str(owner), f"{status}:{limit}", load)


def respond(page: CachedPage) -> Response:
    """200 with the page, or 304 when ``If-None-Match`` names its ETag."""
    headers = {"ETag": page.etag, "Cache-Control": CACHE_CONTROL}
    if _matches(request.headers.get("If-None-Match"), page.etag):
        return Response(b"", status=304, headers=headers)
    return Response(page.body, content_type="application/json", headers=headers)


def _matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or etag in tags
