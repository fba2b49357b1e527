"""Upstreams that are down or stalled: the gateway answers problems, quickly, and leaks nothing."""

from __future__ import annotations

import json
import time

import httpx

from tests.gateway.conftest import StartGateway, nothing_listening
from tests.support import ServiceProcess, assert_problem


def test_upstream_down_is_problem_502(start_gateway: StartGateway) -> None:
    dead = nothing_listening()
    gateway = start_gateway({"PING_URLS": dead})
    resp = httpx.get(f"{gateway.url}/ping", params={"ECHOMSG": "hi"}, headers={"X-Request-ID": "down-1"})
    body = assert_problem(resp, 502)
    assert body["request_id"] == "down-1"
    text = json.dumps(body)
    assert dead.removeprefix("http://") not in text and "Error" not in text


def test_stalled_upstream_is_problem_504_within_the_route_timeout(
    start_gateway: StartGateway, ping_service: ServiceProcess
) -> None:
    gateway = start_gateway({"PING_URLS": ping_service.url, "UPSTREAM_ROUTE_TIMEOUTS": "ping-delay=0.5"})
    started = time.monotonic()
    resp = httpx.get(f"{gateway.url}/ping/delay", params={"ms": 3000}, timeout=10)
    elapsed = time.monotonic() - started
    assert_problem(resp, 504)
    assert 0.4 < elapsed < 2.5  # the gateway gave up at its timeout, not when the upstream answered
    # Faster requests on the same route still pass.
    assert httpx.get(f"{gateway.url}/ping", params={"ECHOMSG": "quick"}).json()["message"] == "quick"
