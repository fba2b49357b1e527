"""Gateway settings that route to the suite's running services (the suite fixture's auth and todos)."""

from __future__ import annotations

from tests.suite import Suite


def suite_upstreams(suite: Suite, **settings: str) -> dict[str, str]:
    """Auth and todos routed to ``suite``'s processes, tokens checked against its auth; plus ``settings``."""
    return {"AUTH_URL": suite.auth_url, "AUTH_URLS": suite.auth_url, "TODOS_URLS": suite.todos_url, **settings}
