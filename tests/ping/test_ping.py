from __future__ import annotations

import json
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.support import ServiceProcess, assert_problem, free_port


def test_ping_echoes_message_with_region_and_instance(ping_service: ServiceProcess) -> None:
    resp = httpx.get(f"{ping_service.url}/ping", params={"ECHOMSG": "hi"})
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["message"] == "hi"
    assert body["region"] == "test-region"
    assert body["instance"] == f"ping-{ping_service.port}"
    answered = datetime.fromisoformat(body["time"].replace("Z", "+00:00"))
    assert answered.tzinfo is not None
    assert abs((datetime.now(UTC) - answered).total_seconds()) < 60


def test_missing_echomsg_echoes_empty_string(ping_service: ServiceProcess) -> None:
    assert httpx.get(f"{ping_service.url}/ping").json()["message"] == ""


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


def test_insane_request_id_is_replaced(ping_service: ServiceProcess) -> None:
    resp = httpx.get(f"{ping_service.url}/ping", headers={"X-Request-ID": "x" * 500})
    assert resp.status_code == 200
    assert len(resp.headers["x-request-id"]) <= 128


def test_unknown_path_is_problem_404(ping_service: ServiceProcess) -> None:
    assert_problem(httpx.get(f"{ping_service.url}/no/such/thing"), 404)


def test_wrong_method_is_problem_405_with_allow(ping_service: ServiceProcess) -> None:
    resp = httpx.post(f"{ping_service.url}/ping", json={})
    assert_problem(resp, 405)
    assert "GET" in resp.headers["allow"]


def test_oversized_body_is_problem_413(ping_service: ServiceProcess) -> None:
    resp = httpx.post(f"{ping_service.url}/ping", content=b"x" * (2 * 1024 * 1024))
    assert_problem(resp, 413)


def test_invalid_query_is_problem_422_with_errors(ping_service: ServiceProcess) -> None:
    body = assert_problem(httpx.get(f"{ping_service.url}/ping/delay", params={"ms": "soon"}), 422)
    assert body["errors"]
    too_long = assert_problem(httpx.get(f"{ping_service.url}/ping", params={"ECHOMSG": "x" * 2000}), 422)
    assert "x" * 100 not in json.dumps(too_long)  # the input is never echoed back


def test_delay_above_bound_is_rejected(ping_service: ServiceProcess) -> None:
    assert_problem(httpx.get(f"{ping_service.url}/ping/delay", params={"ms": 10_000_000}), 422)


def test_health_ready_and_metrics(ping_service: ServiceProcess) -> None:
    assert httpx.get(f"{ping_service.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{ping_service.url}/readyz").status_code == 200
    httpx.get(f"{ping_service.url}/ping")
    metrics = httpx.get(f"{ping_service.url}/metrics").text
    assert 'http_requests_total{method="GET",route="/ping",status="200"}' in metrics
    assert "http_request_duration_seconds_bucket" in metrics
    assert "http_requests_in_flight" in metrics


def test_openapi_lists_ping_and_docs_use_no_cdn(ping_service: ServiceProcess) -> None:
    spec = httpx.get(f"{ping_service.url}/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    assert "/ping" in spec["paths"]
    docs = httpx.get(f"{ping_service.url}/docs")
    assert docs.status_code == 200
    assert "openapi.json" in docs.text
    assert 'src="http' not in docs.text and 'href="http' not in docs.text


def test_the_delay_handler_has_its_own_deadline_and_the_others_keep_the_short_one(log_dir: Path) -> None:
    port = free_port()
    proc = ServiceProcess(
        "services.ping",
        {"PORT": str(port), "REQUEST_TIMEOUT_SECONDS": "0.5", "MAX_DELAY_MS": "1500"},
        log_dir / f"ping-timeout-{port}.log",
    )
    try:
        proc.wait_ready()
        # /ping/delay declares MAX_DELAY_MS + 1 s (handler_deadline): past the 0.5 s default, served.
        resp = httpx.get(f"{proc.url}/ping/delay", params={"ms": 1000}, timeout=10)
        assert resp.status_code == 200 and resp.json()["message"] == "delayed 1000 ms"
        assert httpx.get(f"{proc.url}/ping").status_code == 200
    finally:
        proc.stop()


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
