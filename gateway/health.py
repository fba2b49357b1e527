"""The gateway's own liveness and readiness.

Readiness does not depend on the upstreams: a gateway that is up can answer 502 or
504 for a service that is down, and taking it out of rotation would not help. It
turns 503 only while the process drains after SIGTERM.
"""

from __future__ import annotations

from aiohttp import web

from services.kit.problem import Problem


class Health:
    def __init__(self) -> None:
        self.draining = False

    def start_draining(self) -> None:
        self.draining = True

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(self, request: web.Request) -> web.Response:
        if self.draining:
            raise Problem(503, "the gateway is shutting down", headers={"Cache-Control": "no-store"})
        return web.json_response({"status": "ok"}, headers={"Cache-Control": "no-store"})
