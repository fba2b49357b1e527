"""Load scenarios of the live channel (docs/live.md), on processes of its own (no `make up` needed).

    .venv/bin/python -m bench.live [--idle 2000] [--streams 200] [--rate 50] [--seconds 20] [--kill-streams 1000]

It starts two live instances and a gateway on free ports (their own exchange, queue prefix
and Redis key prefix), trusting a throwaway issuer whose JWKS it serves itself, and
publishes events to the exchange the way the todos relay does (as the local broker's
``guest``, which the instances are told owns every type). Then:

1. **idle**: ``--idle`` streams (one user each) straight to the first instance; the
   instance's RSS before and with them open gives the memory per stream.
2. **lag**: ``--streams`` streams through the gateway (balanced over both instances);
   events published at ``--rate`` per second for ``--seconds`` to random users, each
   carrying its publish time: p50/p99/max from publish to the client's read.
3. **kill**: ``--kill-streams`` streams through the gateway, one event each; the first
   instance is killed (SIGKILL); two more events each; every stream that ended reconnects
   with its Last-Event-ID: reconnected, and events missed (counted per client).

One JSON line per run goes to bench/results/live.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import redis.asyncio as redis
from joserfc import jwt
from joserfc.jwk import RSAKey

from bench.table import append_record
from scripts.suite.procs import free_port

ROOT = Path(__file__).resolve().parent.parent
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
REDIS_URL = "redis://127.0.0.1:6379/0"
SCOPES = "profile todos:read reports:read"


class Issuer:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": "bench", "alg": "RS256", "use": "sig"})
        document = json.dumps({"keys": [self.key.as_dict(private=False)]}).encode()

        class Jwks(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(document)))
                self.end_headers()
                self.wfile.write(document)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Jwks)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self, sub: str) -> str:
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": "quartet",
            "sub": sub,
            "client_id": "quartet-web",
            "scope": SCOPES,
            "jti": uuid.uuid4().hex,
            "iat": now,
            "exp": now + 900,
        }
        return jwt.encode({"alg": "RS256", "kid": "bench", "typ": "at+jwt"}, claims, self.key, algorithms=["RS256"])


class Processes:
    def __init__(self, issuer: Issuer) -> None:
        tag = uuid.uuid4().hex[:8]
        self.exchange = f"bench_live_{tag}"
        self.prefix = f"bench-live-{tag}"
        self.issuer = issuer
        self.procs: list[subprocess.Popen[bytes]] = []
        self.urls: list[str] = []
        self.logs = ROOT / ".run" / "bench-live"
        self.logs.mkdir(parents=True, exist_ok=True)

    def _start(self, module: str, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
        full = {
            **os.environ,
            "QUARTET_ENV_FILE": "",
            "PORT": str(port),
            "AUTH_URL": self.issuer.url,
            "AMQP_URL": AMQP_URL,
            "EVENTS_EXCHANGE": self.exchange,
            "EVENTS_PRODUCERS": json.dumps({"user": "guest", "todo": "guest", "report": "guest"}),
            "LOG_LEVEL": "WARNING",
            **env,
        }
        log = (self.logs / f"{module}-{port}.log").open("ab")
        proc = subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=full, stdout=log, stderr=log)
        self.procs.append(proc)
        return proc

    def live(self, **env: str) -> tuple[subprocess.Popen[bytes], str]:
        port = free_port()
        own = {
            "EVENTS_QUEUE_PREFIX": self.prefix,
            "LIVE_REDIS_URL": REDIS_URL,
            "LIVE_KEY_PREFIX": self.prefix + ":",
            **env,
        }
        proc = self._start("services.live", port, own)
        self.urls.append(f"http://127.0.0.1:{port}")
        return proc, self.urls[-1]

    def gateway(self) -> str:
        port = free_port()
        env = {
            "LIVE_URLS": ",".join(self.urls),
            "METRICS_PORT": str(free_port()),
            "GATEWAY_MAX_STREAMS_PER_CLIENT": "100000",
            "IN_FLIGHT_PER_ADDRESS": "0",
            "IN_FLIGHT_PER_SUBJECT": "0",
        }
        self._start("gateway", port, env)
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()

    async def cleanup(self) -> None:
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            for queue in (f"{self.prefix}.events", f"{self.prefix}.events.dlq"):
                await channel.queue_delete(queue)
            for delay in ("1000ms", "10000ms", "60000ms"):
                await channel.queue_delete(f"{self.prefix}.events.retry.{delay}")
            await channel.exchange_delete(self.exchange)
        client = redis.Redis.from_url(REDIS_URL)
        keys = [key async for key in client.scan_iter(match=self.prefix + ":*", count=1000)]
        for start in range(0, len(keys), 500):
            await client.delete(*keys[start : start + 500])
        await client.aclose()


async def wait_ready(session: aiohttp.ClientSession, url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with session.get(url + "/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise TimeoutError(f"{url} not ready")


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Publisher:
    def __init__(self, exchange: str) -> None:
        self.exchange_name = exchange
        self.connection: Any = None
        self.exchange: Any = None

    async def __aenter__(self) -> Publisher:
        self.connection = await aio_pika.connect(AMQP_URL)
        channel = await self.connection.channel(publisher_confirms=True)
        self.exchange = await channel.get_exchange(self.exchange_name, ensure=False)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.connection.close()

    async def publish(self, subject: str, data: dict[str, Any], event_type: str = "todo.created") -> None:
        body = {
            "id": str(uuid.uuid4()),
            "type": event_type,
            "version": 1,
            "occurred_at": datetime.now(UTC).isoformat(),
            "producer": "todos",
            "subject": subject,
            "data": data,
        }
        message = aio_pika.Message(json.dumps(body).encode(), user_id="guest")
        await self.exchange.publish(message, routing_key=event_type, timeout=10)


@asynccontextmanager
async def sse(
    session: aiohttp.ClientSession, url: str, token: str, last: str | None = None
) -> AsyncIterator[aiohttp.ClientResponse]:
    headers = {"Authorization": f"Bearer {token}"}
    if last:
        headers["Last-Event-ID"] = last
    async with session.get(url, headers=headers, timeout=aiohttp.ClientTimeout(total=None, sock_read=120)) as resp:
        yield resp


async def frames(resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, str]]:
    fields: dict[str, str] = {}
    async for raw in resp.content:
        line = raw.decode().rstrip("\n")
        if line == "":
            if fields:
                yield fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def idle_scenario(
    session: aiohttp.ClientSession, issuer: Issuer, proc: Any, url: str, count: int
) -> dict[str, Any]:
    opened = 0
    all_open = asyncio.Event()
    hold = asyncio.Event()

    refused = 0

    async def one() -> None:
        nonlocal opened, refused
        token = issuer.token(str(uuid.uuid4()))
        while True:
            async with sse(session, url + "/live/events", token) as resp:
                if resp.status != 200:  # 503 while the burst queues for Redis: back off like the SPA
                    refused += 1
                    await asyncio.sleep(random.uniform(0.5, 1.5))
                    continue
                async for frame in frames(resp):
                    if frame.get("event") == "ready":
                        opened += 1
                        if opened == count:
                            all_open.set()
                        await hold.wait()
                        return

    # Warm: the first stream builds what every stream shares (imports, pools, the reader).
    warm = asyncio.create_task(one())
    while opened < 1:
        await asyncio.sleep(0.05)
    hold.set()
    await warm
    await asyncio.sleep(1)
    opened, refused, hold = 0, 0, asyncio.Event()
    before = rss_bytes(proc.pid)
    started = time.perf_counter()
    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await asyncio.wait_for(all_open.wait(), 300)
    open_seconds = time.perf_counter() - started
    await asyncio.sleep(3)  # a heartbeat or two, leases renewed
    with_streams = rss_bytes(proc.pid)
    hold.set()
    await asyncio.gather(*tasks)
    return {
        "idle_streams": count,
        "rss_before_mib": round(before / 2**20, 1),
        "rss_with_streams_mib": round(with_streams / 2**20, 1),
        "kib_per_stream": round((with_streams - before) / count / 1024, 1),
        "open_all_seconds": round(open_seconds, 1),
        "refused_while_opening": refused,
    }


async def lag_scenario(
    session: aiohttp.ClientSession,
    issuer: Issuer,
    publisher: Publisher,
    gateway: str,
    streams: int,
    rate: float,
    seconds: float,
) -> dict[str, Any]:
    users = [str(uuid.uuid4()) for _ in range(streams)]
    lags: list[float] = []
    ready = 0
    all_ready = asyncio.Event()
    total = int(rate * seconds)

    async def one(user: str) -> None:
        nonlocal ready
        async with sse(session, gateway + "/live/events", issuer.token(user)) as resp:
            async for frame in frames(resp):
                if frame.get("event") == "ready":
                    ready += 1
                    if ready == streams:
                        all_ready.set()
                elif "id" in frame:
                    sent = json.loads(frame["data"])["data"]["sent"]
                    lags.append(time.time() - sent)
                    if len(lags) >= total:
                        return

    tasks = [asyncio.create_task(one(user)) for user in users]
    await asyncio.wait_for(all_ready.wait(), 120)
    interval = 1 / rate
    next_at = time.perf_counter()
    for _ in range(total):
        await publisher.publish(random.choice(users), {"sent": time.time()})
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.perf_counter()))
    deadline = time.monotonic() + 30
    while len(lags) < total and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    ordered = sorted(lags)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * p))] * 1000, 1) if ordered else -1.0

    return {
        "lag_streams": streams,
        "writes_per_second": rate,
        "events": total,
        "delivered": len(lags),
        "lag_p50_ms": pct(0.5),
        "lag_p99_ms": pct(0.99),
        "lag_max_ms": round(ordered[-1] * 1000, 1) if ordered else -1.0,
    }


async def kill_scenario(
    session: aiohttp.ClientSession, issuer: Issuer, publisher: Publisher, victim: Any, gateway: str, streams: int
) -> dict[str, Any]:
    users = [str(uuid.uuid4()) for _ in range(streams)]
    received: dict[str, list[int]] = {user: [] for user in users}
    ready = 0
    all_ready = asyncio.Event()
    ended = 0
    reconnected = 0

    async def one(user: str) -> None:
        nonlocal ready, ended, reconnected
        token, last, first = issuer.token(user), None, True
        while len(received[user]) < 3:
            try:
                async with sse(session, gateway + "/live/events", token, last) as resp:
                    if resp.status != 200:
                        await asyncio.sleep(0.5)
                        continue
                    if not first:
                        reconnected += 1
                    async for frame in frames(resp):
                        if frame.get("event") == "ready" and first:
                            first = False
                            ready += 1
                            if ready == streams:
                                all_ready.set()
                        elif "id" in frame:
                            received[user].append(json.loads(frame["data"])["data"]["n"])
                            last = frame["id"]
                            if len(received[user]) == 3:
                                return
            except (aiohttp.ClientError, TimeoutError):
                pass
            ended += 1
            await asyncio.sleep(random.uniform(0.2, 1.0))  # the SPA's backoff starts at 1 s, with jitter

    tasks = [asyncio.create_task(one(user)) for user in users]
    await asyncio.wait_for(all_ready.wait(), 120)
    await asyncio.gather(*(publisher.publish(user, {"n": 0}) for user in users))
    while sum(map(len, received.values())) < streams:
        await asyncio.sleep(0.1)
    victim.kill()
    killed_at = time.perf_counter()
    for n in (1, 2):
        await asyncio.gather(*(publisher.publish(user, {"n": n}, "todo.updated") for user in users))
    await asyncio.wait_for(asyncio.gather(*tasks), 180)
    missed = sum(3 - len(set(v)) for v in received.values())
    wrong = sum(v != [0, 1, 2] for v in received.values())
    return {
        "kill_streams": streams,
        "streams_ended_by_kill": ended,
        "reconnected": reconnected,
        "events_expected": streams * 3,
        "events_received": sum(map(len, received.values())),
        "missed": missed,
        "clients_out_of_order_or_duplicated": wrong,
        "all_done_seconds_after_kill": round(time.perf_counter() - killed_at, 1),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--kill-streams", type=int, default=1000)
    parser.add_argument("--label", default="")
    args = parser.parse_args()
    issuer = Issuer()
    processes = Processes(issuer)
    first, first_url = processes.live()
    processes.live()
    gateway = processes.gateway()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    figures: dict[str, Any] = {"label": args.label}
    try:
        async with aiohttp.ClientSession(connector=connector) as session, Publisher(processes.exchange) as publisher:
            for url in [*processes.urls, gateway]:
                await wait_ready(session, url)
            await asyncio.sleep(2)  # the gateway's first health checks
            figures |= await idle_scenario(session, issuer, first, first_url, args.idle)
            print(json.dumps(figures), flush=True)
            figures |= await lag_scenario(session, issuer, publisher, gateway, args.streams, args.rate, args.seconds)
            print(json.dumps(figures), flush=True)
            figures |= await kill_scenario(session, issuer, publisher, first, gateway, args.kill_streams)
    finally:
        processes.stop()
        await processes.cleanup()
    print(json.dumps(figures))
    append_record("live.jsonl", args.idle, **figures)
    return 0 if figures.get("missed") == 0 else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
