"""The route table's decisions, in process: which row a path falls to, the token it needs, its budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.routing import (
    ANY_TOKEN,
    TABLE,
    RateBudget,
    Requirement,
    RouteSpec,
    budget_for,
    requirement_for,
    route_for,
)

TODOS = Requirement("todos:")
REPORTS = Requirement("reports:")
LOGIN = RateBudget.LOGIN
DEFAULT = RateBudget.DEFAULT

# One path (at least) for every row of the table: (path, route name, token at the edge, budget).
DECISIONS = [
    ("/.well-known/jwks.json", "auth", None, DEFAULT),
    ("/auth", "auth", None, DEFAULT),
    ("/auth/callback", "auth", None, DEFAULT),
    ("/auth/me", "auth", ANY_TOKEN, DEFAULT),
    ("/auth/me/sessions", "auth", ANY_TOKEN, DEFAULT),
    ("/auth/token", "auth", None, LOGIN),
    ("/auth/authorize", "auth", None, LOGIN),
    ("/auth/register", "auth", None, LOGIN),
    ("/auth/revoke", "auth", None, LOGIN),
    ("/auth/introspect", "auth", None, LOGIN),
    ("/todos", "todos", TODOS, DEFAULT),
    ("/todos/1", "todos", TODOS, DEFAULT),
    ("/ping", "ping", None, DEFAULT),
    ("/ping/delay", "ping-delay", None, DEFAULT),
    ("/ping/delay/extra", "ping-delay", None, DEFAULT),
    ("/reports", "reports", REPORTS, DEFAULT),
    ("/reports/summary", "reports", REPORTS, DEFAULT),
    ("/reports/abc/file", "reports-file", REPORTS, DEFAULT),
    ("/live/events", "live", ANY_TOKEN, DEFAULT),
]


@pytest.mark.parametrize(("path", "name", "token", "budget"), DECISIONS)
def test_each_route_says_what_it_needs(path: str, name: str, token: Requirement | None, budget: RateBudget) -> None:
    spec = route_for(path)
    assert spec is not None and spec.name == name
    assert requirement_for(path) == token
    assert budget_for(path) is budget


def test_every_row_of_the_table_is_decided_above() -> None:
    decided = {id(route_for(path)) for path, *_ in DECISIONS}
    assert [spec for spec in TABLE if id(spec) not in decided] == []


@pytest.mark.parametrize(
    ("path", "budget"),
    [
        ("//auth//register", LOGIN),  # another spelling is never looser than the path itself
        ("/auth/register/", LOGIN),
        ("/auth/token/x", DEFAULT),  # login rows are exact paths
        ("/healthz", RateBudget.EXEMPT),  # the probes
        ("/readyz", RateBudget.EXEMPT),
        ("//healthz", DEFAULT),  # exempt only as the gateway serves it
        ("/app/", DEFAULT),
        ("/docs", DEFAULT),
        ("/todosx", DEFAULT),
    ],
)
def test_budgets_of_other_spellings_and_gateway_paths(path: str, budget: RateBudget) -> None:
    assert budget_for(path) is budget


@pytest.mark.parametrize(
    ("path", "token"),
    [
        ("/auth//me", ANY_TOKEN),
        ("//todos/1", TODOS),
        ("/todos/", TODOS),
        ("/reports/abc/file/", REPORTS),
        ("/todosx", None),
        ("/authority", None),
        ("/app/", None),
        ("/openapi.json", None),
    ],
)
def test_requirements_of_other_spellings_and_unrouted_paths(path: str, token: Requirement | None) -> None:
    assert requirement_for(path) == token


def _docs_line(spec: RouteSpec) -> str:
    paths = f"`{spec.pattern}`" if spec.pattern else f"`{spec.prefix}`, `{spec.prefix}/*`"
    if spec.token is None:
        token = "none"
    elif spec.token.family is None:
        token = "a valid token"
    else:
        token = f"a valid token with at least one `{spec.token.family}*` scope"
    budget = {DEFAULT: "address", LOGIN: "address; a `POST` also login", RateBudget.EXEMPT: "none"}[spec.budget]
    return f"| `{spec.name}` | {paths} | {spec.upstream} | {token} | {budget} |"


def test_the_docs_route_table_lists_every_row() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "gateway.md").read_text()
    section = docs[docs.index("## Routes") : docs.index("## Deadlines")]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert sorted(rows) == sorted(_docs_line(spec) for spec in TABLE)
