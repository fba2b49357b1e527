from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from services.ping.app import create_app
from services.ping.config import PingSettings
from tests.factories import TestIssuer
from tests.inprocess import serve
from tests.support import ServiceProcess, assert_problem, free_port


@pytest.fixture(scope="module")
async def ping(issuer: TestIssuer) -> AsyncIterator[httpx.AsyncClient]:
    """Ping in this process; the tests of the process itself (logs, signals) use ``ping_service``."""
    settings = PingSettings(region="test-region", instance="ping-test")
    async with serve(create_app(settings), issuer) as service, service.client() as http:
        yield http


async def test_ping_echoes_message_with_region_and_instance(ping: httpx.AsyncClient) -> None:
    resp = await ping.get("/ping", params={"ECHOMSG": "hi"})
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["message"] == "hi"
    assert body["region"] == "test-region"
    assert body["instance"] == "ping-test"
    answered = datetime.fromisoformat(body["time"].replace("Z", "+00:00"))
    assert answered.tzinfo is not None
    assert abs((datetime.now(UTC) - answered).total_seconds()) < 60


async def test_missing_echomsg_echoes_empty_string(ping: httpx.AsyncClient) -> None:
    assert (await ping.get("/ping")).json()["message"] == ""


def test_request_id_given_is_returned_and_logged(ping_service: ServiceProcess) -> None:
    rid = "test-rid-" + str(time.time_ns())
    resp = httpx.get(f"{ping_service.url}/ping", headers={"X-Request-ID": rid})
    assert resp.headers["x-request-id"] == rid
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in ping_service.logs().splitlines() if line.startswith("{")]
        if any(line.get("request_id") == rid and line.get("service") == "ping" for line in lines):
            return
        time.sleep(0.1)
    pytest.fail("request id not in the service log")


async def test_insane_request_id_is_replaced(ping: httpx.AsyncClient) -> None:
    resp = await ping.get("/ping", headers={"X-Request-ID": "x" * 500})
    assert resp.status_code == 200
    assert len(resp.headers["x-request-id"]) <= 128


async def test_unknown_path_is_problem_404(ping: httpx.AsyncClient) -> None:
    assert_problem(await ping.get("/no/such/thing"), 404)


async def test_wrong_method_is_problem_405_with_allow(ping: httpx.AsyncClient) -> None:
    resp = await ping.post("/ping", json={})
    assert_problem(resp, 405)
    assert "GET" in resp.headers["allow"]


async def test_oversized_body_is_problem_413(ping: httpx.AsyncClient) -> None:
    resp = await ping.post("/ping", content=b"x" * (2 * 1024 * 1024))
    assert_problem(resp, 413)


async def test_invalid_query_is_problem_422_with_errors(ping: httpx.AsyncClient) -> None:
    body = assert_problem(await ping.get("/ping/delay", params={"ms": "soon"}), 422)
    assert body["errors"]
    too_long = assert_problem(await ping.get("/ping", params={"ECHOMSG": "x" * 2000}), 422)
    assert "x" * 100 not in json.dumps(too_long)  # the input is never echoed back


async def test_delay_above_bound_is_rejected(ping: httpx.AsyncClient) -> None:
    assert_problem(await ping.get("/ping/delay", params={"ms": 10_000_000}), 422)


async def test_health_ready_and_metrics(ping: httpx.AsyncClient) -> None:
    assert (await ping.get("/healthz")).json() == {"status": "ok"}
    assert (await ping.get("/readyz")).status_code == 200
    await ping.get("/ping")
    metrics = (await ping.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/ping",status="200"}' in metrics
    assert "http_request_duration_seconds_bucket" in metrics
    assert "http_requests_in_flight" in metrics


async def test_openapi_lists_ping_and_docs_use_no_cdn(ping: httpx.AsyncClient) -> None:
    spec = (await ping.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.1")
    assert "/ping" in spec["paths"]
    docs = await ping.get("/docs")
    assert docs.status_code == 200
    assert "openapi.json" in docs.text
    assert 'src="http' not in docs.text and 'href="http' not in docs.text


async def test_the_delay_handler_has_its_own_deadline_and_the_others_keep_the_short_one(issuer: TestIssuer) -> None:
    settings = PingSettings(region="test-region", request_timeout_seconds=0.5, max_delay_ms=1500)
    async with serve(create_app(settings), issuer) as service, service.client() as http:
        # /ping/delay declares MAX_DELAY_MS + 1 s (handler_deadline): past the 0.5 s default, served.
        resp = await http.get("/ping/delay", params={"ms": 1000})
        assert resp.status_code == 200 and resp.json()["message"] == "delayed 1000 ms"
        assert (await http.get("/ping")).status_code == 200


def test_sigterm_lets_in_flight_request_finish_then_exits(log_dir: Path) -> None:
    port = free_port()
    proc = ServiceProcess(
        "services.ping", {"PORT": str(port), "DRAIN_DELAY_SECONDS": "0.5"}, log_dir / f"ping-drain-{port}.log"
    )
    proc.wait_ready()
    results: dict[str, httpx.Response] = {}

    def slow_request() -> None:
        results["slow"] = httpx.get(f"{proc.url}/ping/delay", params={"ms": 2000}, timeout=10)

    worker = threading.Thread(target=slow_request)
    worker.start()
    time.sleep(0.5)  # the request is in flight
    proc.signal(signal.SIGTERM)
    time.sleep(0.1)
    ready = httpx.get(f"{proc.url}/readyz")  # during the drain delay the listener is still open
    assert_problem(ready, 503)
    worker.join(15)
    assert results["slow"].status_code == 200
    assert results["slow"].json()["message"] == "delayed 2000 ms"
    assert proc.proc.wait(15) == 0
    proc.stop()
