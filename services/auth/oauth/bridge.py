"""The one adapter between authlib's synchronous server and the async service.

1. :func:`snapshot` reads everything authlib may look at from the Quart request
   (method, headers, query, form) while still on the event loop.
2. :meth:`SyncBridge.run` calls the server in a bounded thread pool, so its work
   never blocks the loop.
3. From inside that thread, the storage callbacks authlib calls reach the async
   database through :meth:`SyncBridge.wait` (``run_coroutine_threadsafe`` with a timeout).
4. The server answers an :class:`OAuthResponse`, which :func:`to_quart` turns into a
   Quart response back on the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import json
from collections import defaultdict
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from authlib.oauth2.rfc6749 import OAuth2Payload, OAuth2Request
from quart import Response, request
from werkzeug.datastructures import Headers, MultiDict

T = TypeVar("T")


@dataclass(frozen=True)
class RequestSnapshot:
    """An immutable copy of the HTTP request, safe to hand to another thread."""

    method: str
    uri: str
    headers: Headers
    args: MultiDict[str, str]
    form: MultiDict[str, str]

    @property
    def params(self) -> MultiDict[str, str]:
        """The OAuth parameters: the query of a GET, the form body of a POST (never both)."""
        return self.form if self.method == "POST" else self.args


async def snapshot(issuer: str) -> RequestSnapshot:
    """Copy the current Quart request. The URI authlib sees is the public one (issuer + path)."""
    form = MultiDict(await request.form) if request.method == "POST" else MultiDict()
    uri = issuer + request.path
    return RequestSnapshot(request.method, uri, Headers(request.headers), MultiDict(request.args), form)


class _Payload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, params: MultiDict[str, str]) -> None:
        self._params = params

    @property
    def data(self) -> dict[str, str]:
        return self._params.to_dict(flat=True)

    @functools.cached_property
    def datalist(self) -> defaultdict[str, list[str]]:
        values: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in self._params.items(multi=True):
            values[key].append(value)
        return values


class QuartetOAuth2Request(OAuth2Request):  # type: ignore[misc]
    def __init__(self, snap: RequestSnapshot) -> None:
        # authlib refuses a plain-http URI unless it is loopback. TLS ends at the edge (gateway,
        # ingress): this process only ever sees http, so the check is made there, not here.
        super().__init__(method=snap.method, uri="https://tls.ends.at.the.edge/", headers=snap.headers)
        self.uri = snap.uri
        self.snapshot = snap
        self.payload = _Payload(snap.params)

    @property
    def args(self) -> MultiDict[str, str]:
        return self.snapshot.args

    @property
    def form(self) -> MultiDict[str, str]:
        return self.snapshot.form


@dataclass
class OAuthResponse:
    """What authlib's ``handle_response`` produced: status, body (dict or str), header pairs."""

    status: int
    body: Any
    headers: list[tuple[str, str]] = field(default_factory=list)

    @property
    def location(self) -> str | None:
        return next((value for name, value in self.headers if name.lower() == "location"), None)


def to_quart(result: OAuthResponse) -> Response:
    body = json.dumps(result.body) if isinstance(result.body, dict) else str(result.body or "")
    response = Response(body, status=result.status)
    for name, value in result.headers:
        response.headers[name] = value
    if isinstance(result.body, dict):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class SyncBridge:
    """A bounded thread pool for authlib calls, and the way back to the loop for their storage."""

    def __init__(self, threads: int, storage_timeout: float) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="oauth")
        self._timeout = storage_timeout
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call the synchronous ``fn`` in the pool (with the request's logging context) and await it."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    def wait(self, coro: Coroutine[Any, Any, T]) -> T:
        """From a pool thread: run ``coro`` on the event loop and block this thread for its result."""
        if self._loop is None or _running_loop() is self._loop:
            coro.close()
            raise RuntimeError("SyncBridge.wait is for pool threads of a bound bridge (never the loop itself)")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout=self._timeout)
        except TimeoutError:
            future.cancel()
            raise


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
