"""The single-page app under ``/app/``: files from ``web/``, and index.html for every other path.

Client-side routes (``/app/callback``, ``/app/todos/1``) are not files; answering them
with index.html lets the SPA's router take over. Nothing outside ``web/`` is ever served.
"""

from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

from services.kit.problem import Problem

# index.html names the current asset versions: browsers must revalidate it every time.
_INDEX_HEADERS = {"Cache-Control": "no-cache"}


class SinglePageApp:
    def __init__(self, root: Path, regions: list[dict[str, str]] | None = None) -> None:
        self._root = root.resolve()
        self._index = self._root / "index.html"
        self._regions = regions

    async def config(self, request: web.Request) -> web.Response:
        """``GET /app/config.json``: web/config.json with the regions of PING_REGIONS."""
        try:
            base = json.loads((self._root / "config.json").read_text())
        except (OSError, ValueError):
            base = {}
        if self._regions:
            base["regions"] = self._regions
        return web.json_response(base, headers={"Cache-Control": "no-cache"})

    async def redirect_to_app(self, request: web.Request) -> web.Response:
        """``/`` and ``/app``: the app lives at ``/app/``."""
        return web.Response(status=302, headers={"Location": "/app/"})

    async def handle(self, request: web.Request) -> web.FileResponse:
        """``GET /app/{tail}``."""
        file = self._file_for(request.match_info.get("tail", "")) or self._index
        if not file.is_file():
            raise Problem(404, "the web app is not installed")
        return web.FileResponse(file, headers=_INDEX_HEADERS if file == self._index else None)

    def _file_for(self, tail: str) -> Path | None:
        """The file ``tail`` names inside the root; None when it names no file there."""
        if not tail:
            return None
        try:
            # resolve() follows symlinks and "..": what is checked is what would be read.
            candidate = (self._root / tail).resolve()
        except (OSError, ValueError):  # loops, NUL bytes
            return None
        if not candidate.is_relative_to(self._root):
            raise Problem(404)
        return candidate if candidate.is_file() else None
