"""The floor of ``make bench``: a bare Quart app with the ping route, on the kit's hypercorn settings.

    python -m bench.floor_app PORT

No kit: no request ids, logs, metrics, deadlines or schemas; the same route shape
as ``GET /ping`` (the same JSON fields, ``Cache-Control: no-store``) served by the
same hypercorn ``Config`` the services get (:func:`services.kit.http_process.hypercorn_config`)
under uvloop. What a service costs above it is what the kit and the service add.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import uvloop
from hypercorn.asyncio import serve
from quart import Quart, request

from services.kit.http_process import hypercorn_config
from services.ping.config import PingSettings


def create_app() -> Quart:
    app = Quart("floor")

    @app.get("/ping")
    async def ping() -> tuple[dict[str, str], int, dict[str, str]]:
        reply = {
            "message": request.args.get("ECHOMSG", ""),
            "region": "local",
            "instance": "floor",
            "time": datetime.now(UTC).isoformat(),
        }
        return reply, 200, {"Cache-Control": "no-store"}

    return app


def main(port: int) -> None:
    config = hypercorn_config(PingSettings(port=port, host="127.0.0.1"))
    config.errorlog = None
    uvloop.run(serve(create_app(), config))


if __name__ == "__main__":
    main(int(sys.argv[1]))
