"""GatewaySettings: what the environment can say and what it may not."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config import GatewaySettings
from gateway.edge_auth import bearer_token
from gateway.routes import build_routes
from gateway.routing import requirement_for
from services.kit.security.claims import Claims
from services.kit.security.verifier import TokenCache


def settings_from(monkeypatch: pytest.MonkeyPatch, **env: str) -> GatewaySettings:
    """GatewaySettings read from an environment that holds ``env``."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return GatewaySettings()


def test_upstream_lists_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(monkeypatch, TODOS_URLS=" http://a:8002/, http://b:8002 ")
    assert settings.todos_urls == ("http://a:8002", "http://b:8002")
    assert settings.ping_urls == ("http://127.0.0.1:8003",)
    assert settings.port == 8080 and settings.service_name == "gateway"


def test_cors_origins_and_route_timeouts_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        monkeypatch,
        CORS_ORIGINS="http://localhost:8080,https://quartet.example",
        UPSTREAM_ROUTE_TIMEOUTS="reports-file=120, ping=0.5",
        UPSTREAM_ROUTE_MAX_IN_FLIGHT="ping-delay=3",
    )
    assert settings.cors_origins == ("http://localhost:8080", "https://quartet.example")
    routes = {route.name: route for route in build_routes(settings)}
    assert routes["reports-file"].timeout_seconds == 120
    assert routes["ping"].timeout_seconds == 0.5
    assert routes["ping-delay"].timeout_seconds == 12  # the table's own, not the ping route's
    assert routes["todos"].timeout_seconds == settings.upstream_timeout_seconds
    assert routes["ping-delay"].bulkhead is not None and routes["ping-delay"].bulkhead.cap == 3
    assert routes["todos"].bulkhead is None  # only the todos service's own cap applies


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TODOS_URLS", ""),
        ("TODOS_URLS", "todos:8002"),
        ("UPSTREAM_ROUTE_TIMEOUTS", "nosuch=3"),
        ("UPSTREAM_ROUTE_TIMEOUTS", "ping"),
        ("UPSTREAM_ROUTE_TIMEOUTS", "ping=0"),
        ("UPSTREAM_KEEPALIVE_SECONDS", "75"),
        ("UPSTREAM_ROUTE_MAX_IN_FLIGHT", "ping-delay=0"),
        ("UPSTREAM_ROUTE_MAX_IN_FLIGHT", "nosuch=3"),
        ("TRUSTED_PROXIES", "not-a-network"),
        ("RATE_LIMIT_EXEMPT", "10.0.0.0/33"),
        ("UPSTREAM_ROUTE_CONNECT_TIMEOUTS", "x=1"),
    ],
)
def test_bad_values_are_refused_at_start(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    with pytest.raises(ValidationError):
        settings_from(monkeypatch, **{name: value})


def test_routes_match_whole_segments_most_specific_first() -> None:
    routes = build_routes(GatewaySettings(auth_urls=("http://auth:8001",)))
    assert routes[0].paths == ("/reports/{report_id}/file",)  # a pattern before any prefix
    prefixed = [route for route in routes if route.spec.pattern is None]
    assert [len(r.prefix) for r in prefixed] == sorted((len(r.prefix) for r in prefixed), reverse=True)
    by_prefix = {route.prefix: route for route in prefixed}
    assert by_prefix["/.well-known"].upstream is by_prefix["/auth"].upstream
    assert by_prefix["/ping/delay"].upstream is by_prefix["/ping"].upstream
    assert by_prefix["/todos"].paths == ("/todos", "/todos/{tail:.*}")


def test_every_route_waits_a_little_longer_than_the_service_behind_it() -> None:
    """The service gives up first and answers its own 504; interactive routes stay short."""
    from services.kit.config import ServiceSettings
    from services.ping.config import PingSettings

    routes = {route.name: route for route in build_routes(GatewaySettings())}
    service_deadline = ServiceSettings().request_timeout_seconds
    ping_delay_deadline = PingSettings().max_delay_ms / 1000 + 1  # services/ping/api.py
    for name in ("auth", "todos", "ping", "reports"):
        assert service_deadline < routes[name].timeout_seconds <= service_deadline + 2 <= 10
    assert ping_delay_deadline < routes["ping-delay"].timeout_seconds <= ping_delay_deadline + 2
    assert routes["reports-file"].timeout_seconds > 25  # services/reports/api.py: 25 s


def test_instances_are_picked_round_robin() -> None:
    routes = build_routes(GatewaySettings(todos_urls=("http://a:8002", "http://b:8002")))
    todos = next(route for route in routes if route.name == "todos")
    assert [todos.upstream.pick().url for _ in range(4)] == ["http://a:8002", "http://b:8002"] * 2


def test_networks_and_route_connect_timeouts_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from(
        monkeypatch,
        TRUSTED_PROXIES="10.0.0.0/8, 127.0.0.1",
        RATE_LIMIT_EXEMPT="",
        UPSTREAM_ROUTE_CONNECT_TIMEOUTS="ping=0.5",
    )
    assert settings.trusted_proxies == ("10.0.0.0/8", "127.0.0.1")
    assert settings.rate_limit_exempt == ()
    assert settings.route_connect_timeout("ping") == 0.5
    assert settings.route_connect_timeout("todos") == settings.upstream_connect_timeout_seconds
    assert settings.jwks == f"{settings.issuer}/.well-known/jwks.json"
    assert settings.redis_url is None


@pytest.mark.parametrize(
    ("path", "family"),
    [
        ("/todos", "todos:"),
        ("/todos/1", "todos:"),
        ("/reports/summary", "reports:"),
        ("/auth/me", None),
    ],
)
def test_protected_paths_and_what_they_need(path: str, family: str | None) -> None:
    requirement = requirement_for(path)
    assert requirement is not None and requirement.family == family


@pytest.mark.parametrize(
    "path", ["/ping", "/auth/token", "/auth/authorize", "/auth/register", "/.well-known/jwks.json", "/app/", "/todosx"]
)
def test_public_paths_need_nothing_at_the_edge(path: str) -> None:
    assert requirement_for(path) is None


def test_token_cache_forgets_expired_tokens_and_keeps_its_size() -> None:
    now = [1000.0]
    cache = TokenCache(size=2, clock=lambda: now[0])

    def claims(exp: int) -> Claims:
        return Claims("sub", "client", frozenset(), "jti", 0, exp, "iss", ("quartet",), {})

    cache.put("a", claims(1010))
    cache.put("b", claims(2000))
    assert cache.get("a") is not None
    now[0] = 1010.0
    assert cache.get("a") is None  # expired
    cache.put("c", claims(2000))
    cache.put("d", claims(2000))
    assert cache.get("b") is None and cache.get("c") is not None and cache.get("d") is not None
    assert bearer_token("Bearer abc") == "abc" and bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None and bearer_token("Bearer ") is None
