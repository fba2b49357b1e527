"""Live instances as real processes (their own exchange, queue prefix and Redis key prefix), the
issuer they trust (its JWKS served from a thread here), and a publisher of events."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from tests.factories import TestIssuer
from tests.suite import launch
from tests.support import AMQP_URL, TEST_BROKER_USER, ServiceProcess, delete_event_queues, drop_keys, free_port, unique

REDIS_URL = "redis://127.0.0.1:6379/0"


class _Jwks(BaseHTTPRequestHandler):
    document = b"{}"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.document)))
        self.end_headers()
        self.wfile.write(self.document)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def live_issuer() -> Iterator[TestIssuer]:
    """A test issuer whose JWKS is served over HTTP (processes fetch it like auth's)."""
    port = free_port()
    issuer = TestIssuer(f"http://127.0.0.1:{port}")
    handler = type("Jwks", (_Jwks,), {"document": json.dumps({"keys": [issuer.key.as_dict(private=False)]}).encode()})
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield issuer
    server.shutdown()
    server.server_close()


class Live:
    """Live instances of one test: one exchange, one queue (competing consumers), one key prefix."""

    def __init__(self, issuer: TestIssuer, log_dir: Path, **env: str) -> None:
        self.issuer = issuer
        self.log_dir = log_dir
        self.exchange = unique("test_live_events")
        self.queue_prefix = unique("live")
        self.key_prefix = unique("test-live") + ":"
        self.env = env
        self.instances: list[ServiceProcess] = []

    def start(self, **env: str) -> ServiceProcess:
        full = self.env_for(self.start_env(), **env)
        name = f"{self.queue_prefix}-{len(self.instances) + 1}"
        proc = launch(name, full, self.log_dir, module="services.live")
        self.instances.append(proc)
        return proc

    def start_env(self) -> dict[str, str]:
        """What a new instance gets besides the test's settings: a port and a name."""
        return {"PORT": str(free_port()), "INSTANCE": f"live-{len(self.instances) + 1}"}

    def env_for(self, own: dict[str, str], **env: str) -> dict[str, str]:
        return {
            **own,
            "AUTH_URL": self.issuer.issuer,
            "AMQP_URL": AMQP_URL,
            "EVENTS_EXCHANGE": self.exchange,
            "EVENTS_QUEUE_PREFIX": self.queue_prefix,
            "EVENTS_RETRY_DELAYS": "[0.2, 0.5]",
            "LIVE_REDIS_URL": REDIS_URL,
            "LIVE_KEY_PREFIX": self.key_prefix,
            **self.env,
            **env,
        }

    def url(self, n: int = 0) -> str:
        return self.instances[n].url + "/live/events"

    async def publish(
        self,
        event_type: str,
        subject: str,
        data: dict[str, Any] | None = None,
        *,
        event_id: str | None = None,
        user_id: str | None = TEST_BROKER_USER,
        body: bytes | None = None,
    ) -> str:
        """Publish one event as the tests' broker user (the owner of every type); returns its id."""
        eid = event_id or str(uuid.uuid4())
        envelope = {
            "id": eid,
            "type": event_type,
            "version": 1,
            "occurred_at": datetime.now(UTC).isoformat(),
            "producer": event_type.split(".")[0],
            "subject": subject,
            "correlation_id": "test-live",
            "data": data if data is not None else {"n": 1},
        }
        connection = await aio_pika.connect(AMQP_URL, timeout=10)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange(self.exchange, ensure=False)
            message = aio_pika.Message(body or json.dumps(envelope).encode(), user_id=user_id)
            await exchange.publish(message, routing_key=event_type, timeout=10)
        return eid

    async def cleanup(self) -> None:
        for proc in self.instances:
            proc.stop()
        await delete_event_queues(AMQP_URL, self.exchange, [self.queue_prefix], (0.2, 0.5))
        await drop_keys(REDIS_URL, self.key_prefix)


@pytest.fixture
async def make_live(live_issuer: TestIssuer, log_dir: Path) -> AsyncIterator[Any]:
    """``make_live(instances=2, **env)``: started and ready live instances, cleaned up after the test."""
    made: list[Live] = []

    def make(instances: int = 2, **env: str) -> Live:
        live = Live(live_issuer, log_dir, **env)
        for _ in range(instances):
            live.start()
        for proc in live.instances:
            proc.wait_ready()
        made.append(live)
        return live

    yield make
    for live in made:
        await live.cleanup()
