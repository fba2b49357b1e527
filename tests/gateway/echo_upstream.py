"""A stand-in upstream that reports what crossed the wire, for the proxy's header and body tests.

Not a fake of any Quartet service (those tests use the real ``services.ping``): it answers
whatever path the gateway forwards with what it received, and on a few paths
misbehaves on purpose. Run as ``python -m tests.gateway.echo_upstream`` with ``PORT``.

``/die``: with ``ECHO_MORTAL=1`` the process exits mid-request without answering, as
an instance killed right after its handler committed; otherwise 404 (as a replay of a
DELETE that already ran would get).
"""

from __future__ import annotations

import gzip
import hashlib
import os

from aiohttp import web

GZIPPED = gzip.compress(b"squeezed " * 100)


async def readyz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def echo(request: web.Request) -> web.StreamResponse:
    if request.path.endswith("/gzip"):
        return web.Response(body=GZIPPED, headers={"Content-Encoding": "gzip", "Content-Type": "text/plain"})
    if request.path.endswith("/hop"):
        return web.Response(
            text="hop",
            headers={
                "Connection": "keep-alive, X-Hop-Secret",
                "Keep-Alive": "timeout=5",
                "X-Hop-Secret": "for-the-gateway-only",
                "Proxy-Authenticate": "Basic",
                "X-End-To-End": "kept",
            },
        )
    if request.path.endswith("/die"):
        if os.environ.get("ECHO_MORTAL") == "1":
            os._exit(0)
        return web.Response(status=404, text="gone already")
    if request.path.endswith("/cut"):
        response = web.StreamResponse(headers={"Content-Length": "100000", "Content-Type": "text/plain"})
        await response.prepare(request)
        await response.write(b"x" * 1000)
        assert request.transport is not None
        request.transport.close()
        return response
    digest = hashlib.sha256()
    length = 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        length += len(chunk)
    return web.json_response(
        {
            "method": request.method,
            "target": request.raw_path,
            "headers": [[name, value] for name, value in request.headers.items()],
            "body_length": length,
            "body_sha256": digest.hexdigest(),
        }
    )


def main() -> None:
    app = web.Application()
    app.router.add_get("/readyz", readyz)
    app.router.add_route("*", "/{tail:.*}", echo)
    web.run_app(app, host="127.0.0.1", port=int(os.environ["PORT"]), access_log=None, print=None)


if __name__ == "__main__":
    main()
