"""Every service, and the merged document at the gateway, answer as their OpenAPI says (schemathesis, all checks)."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings

from tests.suite import User

# Stateful runs: a few short, derandomized sequences of linked calls.
STATEFUL = settings(
    max_examples=6,
    stateful_step_count=6,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

auth = schemathesis.pytest.from_fixture("auth_schema")
todos = schemathesis.pytest.from_fixture("todos_schema")
reports = schemathesis.pytest.from_fixture("reports_schema")
ping = schemathesis.pytest.from_fixture("ping_schema")
gateway = schemathesis.pytest.from_fixture("gateway_schema")


def _headers(case: schemathesis.Case[Any], fuzzer: User, doomed: list[User]) -> dict[str, str]:
    user = fuzzer
    if case.method == "DELETE" and case.path == "/auth/me":
        user = doomed[0] if doomed else fuzzer
    return {"Authorization": f"Bearer {user.token}"}


@auth.parametrize()
def test_auth_contract(case: schemathesis.Case[Any], fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed[:1]))


@todos.parametrize()
def test_todos_contract(case: schemathesis.Case[Any], fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed))


@reports.parametrize()
def test_reports_contract(case: schemathesis.Case[Any], fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed))


@ping.parametrize()
def test_ping_contract(case: schemathesis.Case[Any], fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed))


@gateway.parametrize()
def test_merged_contract_at_the_gateway(case: schemathesis.Case[Any], fuzzer: User, doomed: list[User]) -> None:
    case.call_and_validate(headers=_headers(case, fuzzer, doomed[1:]))


def _run_state_machine(schema: schemathesis.BaseSchema, user: User) -> set[tuple[str, str, int]]:
    """Follow the documented links (create → read, change, finish, delete) with every check on each step.

    Returns each (method, path template, status) seen, so a test can tell the links were followed.
    """
    machine = schema.as_state_machine()
    seen: set[tuple[str, str, int]] = set()

    class Workflow(machine):  # type: ignore[misc,valid-type]
        def get_call_kwargs(self, case: schemathesis.Case[Any]) -> dict[str, Any]:
            return {"headers": {"Authorization": f"Bearer {user.token}"}}

        def after_call(self, response: schemathesis.Response, case: schemathesis.Case[Any]) -> None:
            seen.add((case.method, case.path, response.status_code))

    Workflow.run(settings=STATEFUL)
    return seen


def test_todos_workflows_follow_the_links(todos_schema: schemathesis.BaseSchema, fuzzer: User) -> None:
    seen = _run_state_machine(todos_schema, fuzzer)
    assert ("GET", "/todos/{todo_id}", 200) in seen, seen  # reached through the link from POST /todos


def test_reports_workflows_follow_the_links(reports_schema: schemathesis.BaseSchema, fuzzer: User) -> None:
    seen = _run_state_machine(reports_schema, fuzzer)
    assert ("GET", "/reports/{report_id}", 200) in seen, seen


def test_merged_workflows_follow_the_links_at_the_gateway(
    gateway_schema: schemathesis.BaseSchema, fuzzer: User
) -> None:
    # The merged document offers every service's operations, so which linked step a short
    # run reaches varies; any success on a todo taken from POST /todos's link shows the links
    # are followed through the gateway (the todos run above asserts the read itself).
    seen = _run_state_machine(gateway_schema, fuzzer)
    linked = {("GET", 200), ("PATCH", 200), ("PUT", 200), ("DELETE", 204)}
    assert any((method, status) in linked for method, path, status in seen if path.startswith("/todos/{todo_id}")), seen
