"""Gateways for the gateway tests, started by the harness of tests/suite.py (``launch_gateway``:
every upstream of the suite's table not given leads nowhere)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from tests.suite import launch, launch_gateway, nothing_listening
from tests.support import ServiceProcess, free_port

__all__ = ["MAX_BODY_BYTES", "StartGateway", "launch_gateway", "nothing_listening"]

StartGateway = Callable[[Mapping[str, str]], ServiceProcess]

# Small enough that tests cross it cheaply (the settings floor is 1024).
MAX_BODY_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def echo_upstream(log_dir: Path) -> Iterator[ServiceProcess]:
    with launch("echo", {"PORT": str(free_port())}, log_dir, module="tests.gateway.echo_upstream") as proc:
        yield proc


@pytest.fixture(scope="module")
def gateway(log_dir: Path, ping_service: ServiceProcess, echo_upstream: ServiceProcess) -> Iterator[ServiceProcess]:
    """The gateway a test module shares: ping → the real ping service, auth → the echo
    upstream (its public paths reach it without a token), todos and reports → nothing listening."""
    env = {"PING_URLS": ping_service.url, "AUTH_URLS": echo_upstream.url, "MAX_BODY_BYTES": str(MAX_BODY_BYTES)}
    with launch_gateway(log_dir, env) as proc:
        yield proc


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
