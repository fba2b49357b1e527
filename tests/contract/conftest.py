"""The live suite (auth, todos, reports + worker, ping) and a gateway in front of it, for schemathesis.

Every service runs as a real process (tests/suite.py); the fuzzing user holds the
scopes a signed-in user of the SPA has.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis.openapi import from_url

from tests.gateway.conftest import launch_gateway
from tests.suite import Suite, User
from tests.support import ServiceProcess

# Schema-valid yet refused, by design: an opaque value only the server can mint. A random
# cursor (its HMAC fails) is 400; a random code, refresh token or client is an RFC 6749
# 400/401. No JSON Schema can tell a real one from a forged one, so for these operations
# "schema-valid data is accepted" also allows those answers. Every other check stays on.
_MINTED = ["2xx", "400", "401", "403", "404", "409", "429"]
_OPAQUE_INPUTS = [
    {"include-path-regex": "^/auth/(token|revoke|introspect)$"},
    {"include-path": "/todos", "include-method": "GET"},
]

# Bounded and repeatable: a fixed seed, derandomized generation, a few examples per operation.
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20261130,
        "generation": {"max-examples": 8, "deterministic": True},
        "request-timeout": 20,
        "operations": [
            {**selector, "checks": {"positive_data_acceptance": {"expected-statuses": _MINTED}}}
            for selector in _OPAQUE_INPUTS
        ],
    }
)


@pytest.fixture(scope="session")
async def fuzzer(suite: Suite) -> User:
    """The user whose token every generated request carries."""
    return await suite.register()


@pytest.fixture(scope="session")
async def doomed(suite: Suite) -> list[User]:
    """Users for ``DELETE /auth/me`` (one per fuzzed document), so the fuzzer's account survives it."""
    return [await suite.register() for _ in range(2)]


@pytest.fixture(scope="session")
def contract_gateway(suite: Suite, log_dir: Path, ping_for_contract: ServiceProcess) -> Iterator[ServiceProcess]:
    proc = launch_gateway(log_dir, suite.gateway_env(ping_for_contract.url))
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def ping_for_contract(log_dir: Path) -> Iterator[ServiceProcess]:
    from tests.support import free_port

    port = free_port()
    # A short MAX_DELAY_MS: its schema documents the bound, and the fuzzer tries the bound itself.
    env = {"PORT": str(port), "MAX_DELAY_MS": "50"}
    proc = ServiceProcess("services.ping", env, log_dir / f"ping-contract-{port}.log")
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


def _schema(base_url: str) -> schemathesis.BaseSchema:
    schema = from_url(base_url + "/openapi.json", config=CONFIG)
    schema.config.update(base_url=base_url)
    return schema


@pytest.fixture(scope="session")
def auth_schema(suite: Suite) -> schemathesis.BaseSchema:
    return _schema(suite.auth_url)


@pytest.fixture(scope="session")
def todos_schema(suite: Suite) -> schemathesis.BaseSchema:
    return _schema(suite.todos_url)


@pytest.fixture(scope="session")
def reports_schema(suite: Suite) -> schemathesis.BaseSchema:
    return _schema(suite.reports_url)


@pytest.fixture(scope="session")
def ping_schema(ping_for_contract: ServiceProcess) -> schemathesis.BaseSchema:
    return _schema(ping_for_contract.url)


@pytest.fixture(scope="session")
def gateway_schema(contract_gateway: ServiceProcess) -> schemathesis.BaseSchema:
    return _schema(contract_gateway.url)


@pytest.fixture(autouse=True)
def _schemathesis_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32.5's lazy schemas read ``node._nodeid``, which pytest 9 no longer has: give it one."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
