"""The proxy against real processes: the ping service, and the echo upstream for what crossed the wire."""

from __future__ import annotations

import gzip
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.checks import raw_request
from tests.gateway.conftest import MAX_BODY_BYTES, StartGateway
from tests.suite import launch_ping
from tests.support import ServiceProcess, assert_problem


@pytest.fixture
def second_ping(log_dir: Path) -> Iterator[ServiceProcess]:
    with launch_ping(log_dir) as proc:
        yield proc


def echoed(resp: httpx.Response) -> tuple[dict[str, object], dict[str, list[str]]]:
    """The echo upstream's report, and the headers it received (lower-case names, repeats kept)."""
    assert resp.status_code == 200, resp.text
    report = resp.json()
    headers: dict[str, list[str]] = {}
    for name, value in report["headers"]:
        headers.setdefault(name.lower(), []).append(value)
    return report, headers


def logged(proc: ServiceProcess, request_id: str, timeout: float = 5.0) -> list[dict[str, object]]:
    """The JSON log lines of ``proc`` that carry ``request_id`` (waits a little for them to land)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = [json.loads(line) for line in proc.logs().splitlines() if line.startswith("{")]
        found = [line for line in lines if line.get("request_id") == request_id]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_ping_through_the_gateway(gateway: ServiceProcess, ping_service: ServiceProcess) -> None:
    resp = httpx.get(f"{gateway.url}/ping", params={"ECHOMSG": "hi"})
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "no-store"
    body = resp.json()
    assert body["message"] == "hi"
    assert body["instance"] == f"ping-{ping_service.port}"
    assert {"region", "time"} <= body.keys()


def test_request_id_given_is_returned_and_logged_by_gateway_and_service(
    gateway: ServiceProcess, ping_service: ServiceProcess
) -> None:
    rid = f"gw-test-{time.time_ns()}"
    resp = httpx.get(f"{gateway.url}/ping", params={"ECHOMSG": "id"}, headers={"X-Request-ID": rid})
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == rid
    assert any(line.get("service") == "ping" for line in logged(ping_service, rid))
    access = [line for line in logged(gateway, rid) if line.get("event") == "request"]
    assert len(access) == 1
    assert access[0]["route"] == "ping"
    assert access[0]["upstream"] == ping_service.url
    assert access[0]["status"] == 200
    assert {"method", "path", "duration_ms"} <= access[0].keys()


@pytest.mark.parametrize("given", ["x" * 129, "has space", "semi;colon", ""])
def test_insane_request_id_is_replaced_and_sent_upstream(gateway: ServiceProcess, given: str) -> None:
    resp = httpx.get(f"{gateway.url}/auth/rid", headers={"X-Request-ID": given})
    _, received = echoed(resp)
    rid = resp.headers["x-request-id"]
    assert rid != given
    assert len(rid) == 32 and int(rid, 16) >= 0
    assert received["x-request-id"] == [rid]


def test_hop_by_hop_request_headers_are_not_forwarded(gateway: ServiceProcess, echo_upstream: ServiceProcess) -> None:
    status, headers, body = raw_request(
        gateway.port,
        f"""
GET /auth/hops?a=1&b=%2F HTTP/1.1
Host: 127.0.0.1:{gateway.port}
Connection: close, X-Hop-Secret
X-Hop-Secret: for-the-gateway-only
Keep-Alive: timeout=5
Proxy-Authorization: Basic Zm9vOmJhcg==
TE: trailers
Upgrade: h2c
Authorization: Bearer end-to-end
X-Forwarded-For: 203.0.113.7
""",
    )
    assert status == 200
    report = json.loads(body)
    received = {name.lower(): value for name, value in report["headers"]}
    for hop in ("x-hop-secret", "keep-alive", "proxy-authorization", "te", "upgrade", "transfer-encoding"):
        assert hop not in received
    assert received.get("connection", "keep-alive").lower() == "keep-alive"  # the gateway's own hop, if any
    assert received["authorization"] == "Bearer end-to-end"
    assert received["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert received["x-forwarded-proto"] == "http"
    assert received["x-forwarded-host"] == f"127.0.0.1:{gateway.port}"
    assert received["host"] == echo_upstream.url.removeprefix("http://")
    # The path and query arrive byte for byte; aiohttp adds no defaults of its own.
    assert report["target"] == "/auth/hops?a=1&b=%2F"
    assert "accept-encoding" not in received and "user-agent" not in received
    assert headers["x-request-id"] == received["x-request-id"]


def test_hop_by_hop_response_headers_are_not_returned(gateway: ServiceProcess) -> None:
    resp = httpx.get(f"{gateway.url}/auth/hop")
    assert resp.status_code == 200
    assert resp.text == "hop"
    assert resp.headers["x-end-to-end"] == "kept"
    for hop in ("x-hop-secret", "keep-alive", "proxy-authenticate"):
        assert hop not in resp.headers
    assert resp.headers.get("connection", "keep-alive") == "keep-alive"


def test_compressed_body_passes_through_untouched(gateway: ServiceProcess) -> None:
    with httpx.stream("GET", f"{gateway.url}/auth/gzip", headers={"Accept-Encoding": "gzip"}) as resp:
        raw = b"".join(resp.iter_raw())
    assert resp.headers["content-encoding"] == "gzip"
    assert gzip.decompress(raw) == b"squeezed " * 100


def test_request_body_streams_through_with_its_length(gateway: ServiceProcess) -> None:
    payload = bytes(range(256)) * 200  # 51 200 bytes, under the limit
    report, received = echoed(httpx.post(f"{gateway.url}/auth/upload", content=payload))
    assert report["method"] == "POST"
    assert report["body_length"] == len(payload)
    assert report["body_sha256"] == hashlib.sha256(payload).hexdigest()
    assert received["content-length"] == [str(len(payload))]


def test_chunked_request_body_arrives_whole_with_its_length(gateway: ServiceProcess) -> None:
    chunks = [bytes([n]) * 5000 for n in range(10)]

    def body() -> Iterator[bytes]:
        yield from chunks

    report, received = echoed(httpx.put(f"{gateway.url}/auth/upload", content=body()))
    assert report["body_length"] == 50_000
    assert report["body_sha256"] == hashlib.sha256(b"".join(chunks)).hexdigest()
    # Buffered before an upstream slot is taken (docs/gateway.md, bulkheads): sent with its length.
    assert received["content-length"] == ["50000"] and "transfer-encoding" not in received


def test_oversized_body_with_content_length_is_problem_413(gateway: ServiceProcess) -> None:
    resp = httpx.post(f"{gateway.url}/auth/upload", content=b"x" * (MAX_BODY_BYTES + 1))
    assert_problem(resp, 413)


def test_oversized_chunked_body_is_problem_413(gateway: ServiceProcess) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(MAX_BODY_BYTES // 8192 + 4):
            yield b"y" * 8192

    assert_problem(httpx.post(f"{gateway.url}/auth/upload", content=body()), 413)


def test_response_cut_by_the_upstream_reaches_the_client_as_cut(gateway: ServiceProcess) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(f"{gateway.url}/auth/cut")
    # The gateway is fine afterwards.
    assert httpx.get(f"{gateway.url}/ping").status_code == 200


@pytest.mark.parametrize("path", ["/todosx", "/pingpong", "/nothing/here", "/authority", "/.well-knownx"])
def test_unknown_prefix_is_problem_404(gateway: ServiceProcess, path: str) -> None:
    assert_problem(httpx.get(f"{gateway.url}{path}"), 404)


def test_wrong_method_on_a_gateway_path_is_problem_405(gateway: ServiceProcess) -> None:
    resp = httpx.post(f"{gateway.url}/healthz")
    assert_problem(resp, 405)
    assert "GET" in resp.headers["allow"]


@pytest.mark.parametrize("path", ["/auth", "/auth/token", "/.well-known/jwks.json"])
def test_prefixes_route_to_their_upstream(gateway: ServiceProcess, path: str) -> None:
    # Auth leads to the echo upstream: its report proves where the request went.
    report, _ = echoed(httpx.get(f"{gateway.url}{path}"))
    assert report["target"] == path


def test_secrets_in_headers_are_never_logged(gateway: ServiceProcess) -> None:
    rid = f"gw-secret-{time.time_ns()}"
    headers = {"X-Request-ID": rid, "Authorization": "Bearer tok-sekrit-1", "Cookie": "session=cookie-sekrit-2"}
    assert httpx.get(f"{gateway.url}/ping", headers=headers).status_code == 200
    assert logged(gateway, rid)
    assert "sekrit" not in gateway.logs()


def test_instances_of_a_service_take_turns(
    start_gateway: StartGateway, ping_service: ServiceProcess, second_ping: ServiceProcess
) -> None:
    proc = start_gateway({"PING_URLS": f"{ping_service.url},{second_ping.url}"})
    instances = [httpx.get(f"{proc.url}/ping").json()["instance"] for _ in range(4)]
    assert instances[0] != instances[1]
    assert instances[:2] == instances[2:]
    assert set(instances) == {f"ping-{ping_service.port}", f"ping-{second_ping.port}"}


@pytest.mark.parametrize(
    "target", ["/ping/../todos/1", "/todos/%2e%2e/auth/me", "/todos/x/..%2F..%2Fauth", "/ping/./x"]
)
def test_dot_segments_in_proxied_paths_are_problem_400(gateway: ServiceProcess, target: str) -> None:
    status, headers, body = raw_request(
        gateway.port, f"GET {target} HTTP/1.1\nHost: 127.0.0.1:{gateway.port}\nConnection: close"
    )
    assert status == 400
    assert headers["content-type"].startswith("application/problem+json")
    assert json.loads(body)["request_id"] == headers["x-request-id"]
