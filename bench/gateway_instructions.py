"""Instructions the gateway spends per proxied request, counted by valgrind's callgrind.

    python -m bench.gateway_instructions [--requests 400] [--concurrency 8] [--env NAME=VALUE ...]

CPU seconds on a shared 2-core machine drift by a factor of two between runs; an
instruction count does not. This starts a stand-in upstream (an aiohttp app in this
process: the JWKS, ``/readyz``, and ``/todos`` answering a 10-item page with the headers
hypercorn sends) and the gateway under ``valgrind --tool=callgrind --instr-atstart=no``
in front of it, warms up with 100 authenticated ``GET /todos?limit=10`` over keep-alive,
switches counting on (``callgrind_control -i on``), sends ``--requests`` more at
``--concurrency``, switches it off, dumps, and prints the ``totals`` divided by the
requests. Health checks run once an hour here, so none falls inside the counted window.
What is counted is the gateway process alone: the stand-in and the load run here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
from aiohttp import web
from joserfc import jwt
from joserfc.jwk import ECKey

from scripts.suite.procs import free_port

ROOT = Path(__file__).resolve().parent.parent
_ITEM = {
    "id": "00000000-0000-0000-0000-000000000000",
    "content": "buy milk and a few other things",
    "is_finished": False,
    "created_at": "2026-12-03T10:00:00.000000+00:00",
    "updated_at": "2026-12-03T10:00:00.000000+00:00",
    "finished_at": None,
}
_PAGE = json.dumps({"items": [_ITEM] * 10, "next_cursor": None}).encode()


def stand_in(key: ECKey) -> web.Application:
    jwks = {"keys": [key.as_dict(private=False)]}

    async def keys(request: web.Request) -> web.Response:
        return web.json_response(jwks)

    async def ready(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def todos(request: web.Request) -> web.Response:
        return web.Response(
            body=_PAGE,
            headers={
                "Content-Type": "application/json",
                "X-Request-ID": request.headers.get("X-Request-ID", ""),
                "Cache-Control": "private, no-cache",
                "Vary": "Authorization",
                "Date": "Thu, 03 Dec 2026 10:00:00 GMT",
            },
        )

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", keys)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/todos", todos)
    return app


def mint(key: ECKey, issuer: str) -> str:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": "quartet",
        "sub": str(uuid.uuid4()),
        "client_id": "quartet-web",
        "scope": "todos:read",
        "jti": str(uuid.uuid4()),
        "iat": now,
        "exp": now + 900,
    }
    header = {"alg": "ES256", "kid": key.kid, "typ": "at+jwt"}
    return jwt.encode(header, claims, key, algorithms=["ES256"], default_type=None)


async def load(url: str, token: str, requests: int, concurrency: int) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    left = requests
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"gateway answered {response.status}")

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 180
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, TimeoutError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start")
            await asyncio.sleep(0.5)


def totals(path: Path) -> int:
    for line in path.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {path}")


async def run(args: argparse.Namespace) -> int:
    key = ECKey.generate_key("P-256", parameters={"kid": "bench", "alg": "ES256", "use": "sig"})
    upstream_port, port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    runner = web.AppRunner(stand_in(key), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", upstream_port).start()
    out = Path(tempfile.mkdtemp(prefix="gw-callgrind-")) / "callgrind.out"
    env = {
        **os.environ,
        "PORT": str(port),
        "METRICS_PORT": str(free_port()),
        "AUTH_URL": upstream,
        **{f"{name}_URLS": upstream for name in ("AUTH", "TODOS", "PING", "REPORTS")},
        "HEALTH_CHECK_INTERVAL_SECONDS": "3600",
        "LOG_LEVEL": "INFO",
        **dict(item.split("=", 1) for item in args.env),
    }
    command = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
    proc = subprocess.Popen(
        [*command, sys.executable, "-m", "gateway"],
        cwd=args.root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        gateway = f"http://127.0.0.1:{port}"
        await wait_up(f"{gateway}/healthz", proc)
        url, token = f"{gateway}/todos?limit=10", mint(key, upstream)
        await load(url, token, 100, args.concurrency)
        subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True, capture_output=True)
        await load(url, token, args.requests, args.concurrency)
        subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True, capture_output=True)
        subprocess.run(["callgrind_control", "-d", str(proc.pid)], check=True, capture_output=True)
        dump = out.parent / "callgrind.out.1"
        deadline = time.monotonic() + 120
        while not (dump.exists() and "\ntotals:" in dump.read_text()):  # written after the command returns
            if time.monotonic() > deadline:
                raise RuntimeError("callgrind wrote no dump")
            await asyncio.sleep(0.5)
        per_request = totals(dump) / args.requests
        print(
            f"instructions per request: {per_request:,.0f} ({args.requests} requests, concurrency {args.concurrency})"
        )
    finally:
        proc.terminate()
        proc.wait(60)
        await runner.cleanup()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--root", type=Path, default=ROOT, help="the tree whose gateway runs (another checkout)")
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the gateway's environment")
    return asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
