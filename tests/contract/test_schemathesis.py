"""Every service, and the merged document at the gateway, answer as their OpenAPI says (schemathesis, all checks)."""

from __future__ import annotations

import schemathesis

from tests.suite import User

auth = schemathesis.pytest.from_fixture("auth_schema")
todos = schemathesis.pytest.from_fixture("todos_schema")
reports = schemathesis.pytest.from_fixture("reports_schema")
ping = schemathesis.pytest.from_fixture("ping_schema")
gateway = schemathesis.pytest.from_fixture("gateway_schema")


def _headers(case: schemathesis.Case, fuzzer: User, doomed: list[User]) -> dict[str, str]:
    user = fuzzer
    if case.method == "DELETE" and case.path == "/auth/me":
        user = doomed[0] if doomed else fuzzer
    return {"Authorization": f"Bearer {user.token}"}


@auth.parametrize()
def test_auth_contract(case: schemathesis.Case, fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed[:1]))


@todos.parametrize()
def test_todos_contract(case: schemathesis.Case, fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed))


@reports.parametrize()
def test_reports_contract(case: schemathesis.Case, fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed))


@ping.parametrize()
def test_ping_contract(case: schemathesis.Case, fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed))


@gateway.parametrize()
def test_merged_contract_at_the_gateway(case: schemathesis.Case, fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed[1:]))
