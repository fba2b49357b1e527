from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.support import ServiceProcess, free_port

StartGateway = Callable[[Mapping[str, str]], ServiceProcess]

# Small enough that tests cross it cheaply (the settings floor is 1024).
MAX_BODY_BYTES = 64 * 1024


def nothing_listening() -> str:
    """A base URL where nothing listens: a port that was free a moment ago."""
    return f"http://127.0.0.1:{free_port()}"


def launch_gateway(log_dir: Path, env: Mapping[str, str]) -> ServiceProcess:
    """A real ``python -m gateway`` on a free port, ready; upstreams not in ``env`` lead nowhere."""
    port = free_port()
    upstreams = {name: nothing_listening() for name in ("AUTH_URLS", "TODOS_URLS", "PING_URLS", "REPORTS_URLS")}
    own = {"PORT": str(port), "METRICS_PORT": str(free_port())}
    proc = ServiceProcess("gateway", {**upstreams, **own, **env}, log_dir / f"gateway-{port}.log")
    try:
        proc.wait_ready()
    except BaseException:
        proc.stop()
        raise
    return proc


@pytest.fixture(scope="module")
def echo_upstream(log_dir: Path) -> Iterator[ServiceProcess]:
    port = free_port()
    proc = ServiceProcess("tests.gateway.echo_upstream", {"PORT": str(port)}, log_dir / f"echo-{port}.log")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def gateway(log_dir: Path, ping_service: ServiceProcess, echo_upstream: ServiceProcess) -> Iterator[ServiceProcess]:
    """The gateway a test module shares: ping → the real ping service, auth → the echo
    upstream (its public paths reach it without a token), todos and reports → nothing listening."""
    proc = launch_gateway(
        log_dir,
        {"PING_URLS": ping_service.url, "AUTH_URLS": echo_upstream.url, "MAX_BODY_BYTES": str(MAX_BODY_BYTES)},
    )
    yield proc
    proc.stop()


@pytest.fixture
def start_gateway(log_dir: Path) -> Iterator[StartGateway]:
    """Start a gateway with its own settings for one test; stopped when the test ends."""
    started: list[ServiceProcess] = []

    def start(env: Mapping[str, str]) -> ServiceProcess:
        started.append(launch_gateway(log_dir, env))
        return started[-1]

    yield start
    for proc in started:
        proc.stop()
