"""A Server-Sent Events reader for the tests: ``async with open_stream(...)``, then ``await stream.frame()``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx


@dataclass(frozen=True)
class Frame:
    """One frame: ``event`` is ``comment`` for ``: hb`` and ``retry`` for a lone ``retry:``."""

    event: str
    data: str = ""
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


class Stream:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.frames: asyncio.Queue[Frame | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def status(self) -> int:
        return self.response.status_code

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        fields: dict[str, str] = {}
        comment = False
        try:
            async for line in self.response.aiter_lines():
                if line == "":
                    if fields:
                        event = fields.get("event") or ("retry" if "retry" in fields else "message")
                        await self.frames.put(Frame(event, fields.get("data", ""), fields.get("id")))
                    elif comment:
                        await self.frames.put(Frame("comment"))
                    fields, comment = {}, False
                elif line.startswith(":"):
                    comment = True
                else:
                    name, _, value = line.partition(":")
                    fields[name] = value.removeprefix(" ")
        except (httpx.HTTPError, OSError):
            pass
        finally:
            await self.frames.put(None)  # the end of the stream

    async def frame(self, timeout: float = 15.0, *, skip_heartbeats: bool = True) -> Frame | None:
        """The next frame (None once the stream ended)."""
        while True:
            frame = await asyncio.wait_for(self.frames.get(), timeout)
            if frame is None:
                await self.frames.put(None)
                return None
            if skip_heartbeats and frame.event in {"comment", "retry"}:
                continue
            return frame

    async def events(self, count: int, timeout: float = 15.0) -> list[Frame]:
        """The next ``count`` event frames (not ready/reset), in order."""
        found: list[Frame] = []
        while len(found) < count:
            frame = await self.frame(timeout)
            assert frame is not None, f"the stream ended after {len(found)} of {count} events"
            if frame.id is not None:
                found.append(frame)
        return found

    async def ended(self, timeout: float = 15.0) -> list[Frame]:
        """Every frame until the end of the stream."""
        rest: list[Frame] = []
        while (frame := await self.frame(timeout, skip_heartbeats=False)) is not None:
            rest.append(frame)
        return rest

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self.response.aclose()


@contextlib.asynccontextmanager
async def open_stream(
    client: httpx.AsyncClient, url: str, token: str | None, last_event_id: str | None = None
) -> AsyncIterator[Stream]:
    headers = {"Accept": "text/event-stream"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    request = client.build_request("GET", url, headers=headers, timeout=httpx.Timeout(10, read=None))
    response = await client.send(request, stream=True)
    stream = Stream(response)
    if response.status_code == 200:
        stream.start()
    else:
        await response.aread()
    try:
        yield stream
    finally:
        await stream.close()
