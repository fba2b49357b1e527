"""The gateway's own endpoints and its shutdown."""

from __future__ import annotations

import re
import signal
import threading
import time

import httpx

from tests.gateway.conftest import StartGateway
from tests.support import ServiceProcess, assert_problem


def test_health_and_ready_do_not_need_upstreams(start_gateway: StartGateway) -> None:
    gateway = start_gateway({})  # every upstream leads nowhere
    health = httpx.get(f"{gateway.url}/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert health.headers["x-request-id"]
    assert httpx.get(f"{gateway.url}/readyz").status_code == 200


def test_metrics_count_requests_by_route_upstream_and_status(
    gateway: ServiceProcess, ping_service: ServiceProcess
) -> None:
    assert httpx.get(f"{gateway.url}/ping").status_code == 200
    httpx.get(f"{gateway.url}/nowhere")
    resp = httpx.get(f"{gateway.metrics_url}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    counted = re.search(
        rf'gateway_requests_total\{{route="ping",status="200",upstream="{re.escape(ping_service.url)}"\}} (\d+)',
        text,
    )
    assert counted and int(counted.group(1)) >= 1
    assert 'gateway_requests_total{route="unmatched",status="404",upstream=""}' in text
    assert 'gateway_request_duration_seconds_bucket{le="0.1",route="ping"}' in text
    assert "gateway_requests_in_flight 0.0" in text  # the metrics listener's own request is not counted


def in_flight(gateway: ServiceProcess) -> float:
    found = re.search(r"^gateway_requests_in_flight (\S+)$", httpx.get(f"{gateway.metrics_url}/metrics").text, re.M)
    assert found
    return float(found.group(1))  # the metrics listener's own request is not counted


def test_sigterm_lets_in_flight_request_finish_then_exits_0(
    start_gateway: StartGateway, ping_service: ServiceProcess
) -> None:
    gateway = start_gateway(
        {"PING_URLS": ping_service.url, "DRAIN_DELAY_SECONDS": "1.0", "SHUTDOWN_GRACE_SECONDS": "15"}
    )
    results: dict[str, httpx.Response] = {}

    def slow_request() -> None:
        results["slow"] = httpx.get(f"{gateway.url}/ping/delay", params={"ms": 3000}, timeout=20)

    worker = threading.Thread(target=slow_request)
    worker.start()
    deadline = time.monotonic() + 10
    while in_flight(gateway) < 1:
        assert time.monotonic() < deadline, "the slow request never reached the gateway"
        time.sleep(0.05)
    gateway.signal(signal.SIGTERM)
    time.sleep(0.1)
    assert_problem(httpx.get(f"{gateway.url}/readyz"), 503)  # still listening during the drain delay
    worker.join(20)
    assert results["slow"].status_code == 200
    assert results["slow"].json()["message"] == "delayed 3000 ms"
    assert gateway.proc.wait(20) == 0


def test_metrics_are_not_served_on_the_public_listener(gateway: ServiceProcess) -> None:
    public = httpx.get(f"{gateway.url}/metrics")
    assert public.status_code == 404
    assert public.headers["content-type"].startswith("application/problem+json")
    assert "gateway_requests" not in public.text
    assert httpx.get(f"{gateway.metrics_url}/metrics").status_code == 200
    assert gateway.metrics_url != gateway.url
