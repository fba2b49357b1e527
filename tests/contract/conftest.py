"""The live suite (auth, todos, reports + worker, ping) and a gateway in front of it, for schemathesis.

Every service runs as a real process (the harness of tests/suite.py); the fuzzing user holds the
scopes a signed-in user of the SPA has.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import schemathesis
from schemathesis.openapi import from_url

from tests.suite import Suite, User, launch_gateway, launch_ping
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
def ping_for_contract(log_dir: Path) -> Iterator[ServiceProcess]:
    # A short MAX_DELAY_MS: its schema documents the bound, and the fuzzer tries the bound itself.
    with launch_ping(log_dir, "ping", MAX_DELAY_MS="50") as proc:
        yield proc


@pytest.fixture(scope="session")
def contract_gateway(suite: Suite, log_dir: Path, ping_for_contract: ServiceProcess) -> Iterator[ServiceProcess]:
    with launch_gateway(log_dir, suite.gateway_env(ping_for_contract.url)) as proc:
        yield proc


def schema_of(name: str, served_by: str) -> Callable[..., schemathesis.BaseSchema]:
    """A session fixture ``<name>_schema``: the OpenAPI document of ``name`` as the fixture ``served_by``
    serves it (the suite: its process ``name``; else that process)."""

    @pytest.fixture(scope="session", name=f"{name}_schema")
    def schema(request: pytest.FixtureRequest) -> schemathesis.BaseSchema:
        server = request.getfixturevalue(served_by)
        base_url = server.processes[name].url if isinstance(server, Suite) else server.url
        loaded = from_url(base_url + "/openapi.json", config=CONFIG)
        loaded.config.update(base_url=base_url)
        return loaded

    return schema


auth_schema = schema_of("auth", "suite")
todos_schema = schema_of("todos", "suite")
reports_schema = schema_of("reports", "suite")
ping_schema = schema_of("ping", "ping_for_contract")
gateway_schema = schema_of("gateway", "contract_gateway")


@pytest.fixture(autouse=True)
def _schemathesis_node_id(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32.5's lazy schemas read ``node._nodeid``, which pytest 9 no longer has: give it one."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid
