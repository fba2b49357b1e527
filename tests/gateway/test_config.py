"""GatewaySettings: what the environment can say and what it may not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config import GatewaySettings
from gateway.routing import build_routes


def test_upstream_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TODOS_URLS", " http://a:8002/, http://b:8002 ")
    settings = GatewaySettings()
    assert settings.todos_urls == ("http://a:8002", "http://b:8002")
    assert settings.ping_urls == ("http://127.0.0.1:8003",)
    assert settings.port == 8080 and settings.service_name == "gateway"


def test_cors_origins_and_route_timeouts_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORS_ORIGINS", "http://localhost:8080,https://quartet.example")
    monkeypatch.setenv("UPSTREAM_ROUTE_TIMEOUTS", "reports=120, ping=0.5")
    settings = GatewaySettings()
    assert settings.cors_origins == ("http://localhost:8080", "https://quartet.example")
    assert settings.route_timeout("reports") == 120
    assert settings.route_timeout("ping") == 0.5
    assert settings.route_timeout("todos") == settings.upstream_timeout_seconds


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TODOS_URLS", ""),
        ("TODOS_URLS", "todos:8002"),
        ("UPSTREAM_ROUTE_TIMEOUTS", "nosuch=3"),
        ("UPSTREAM_ROUTE_TIMEOUTS", "ping"),
        ("UPSTREAM_ROUTE_TIMEOUTS", "ping=0"),
        ("UPSTREAM_KEEPALIVE_SECONDS", "75"),
    ],
)
def test_bad_values_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        GatewaySettings()


def test_routes_match_whole_segments_longest_prefix_first() -> None:
    routes = build_routes(GatewaySettings(auth_urls=("http://auth:8001",)))
    assert [len(route.prefix) for route in routes] == sorted((len(route.prefix) for route in routes), reverse=True)
    by_prefix = {route.prefix: route for route in routes}
    assert by_prefix["/.well-known"].upstream is by_prefix["/auth"].upstream
    assert by_prefix["/todos"].paths == ("/todos", "/todos/{tail:.*}")


def test_instances_are_picked_round_robin() -> None:
    routes = build_routes(GatewaySettings(todos_urls=("http://a:8002", "http://b:8002")))
    todos = next(route for route in routes if route.name == "todos")
    assert [todos.upstream.pick().url for _ in range(4)] == ["http://a:8002", "http://b:8002"] * 2
