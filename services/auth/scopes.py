"""The scopes the suite knows, and the rule that cuts a request down to what may be granted."""

from __future__ import annotations

from collections.abc import Iterable

# What a person may delegate to an app, and what only a service (client credentials) may hold.
USER_SCOPES = ("profile", "todos:read", "todos:write", "reports:read", "reports:write")
SERVICE_SCOPES = ("todos:read:any",)
ALL_SCOPES = USER_SCOPES + SERVICE_SCOPES


def cut_down(requested: str | None, *allowed: Iterable[str]) -> str:
    """The requested scopes (or, if none were asked for, all) that every ``allowed`` set permits.

    Keeps the request's order; returns ``""`` when nothing is left.
    """
    permitted = set(ALL_SCOPES)
    for scopes in allowed:
        permitted &= set(scopes)
    wanted = requested.split() if requested and requested.strip() else list(ALL_SCOPES)
    granted: list[str] = []
    for scope in wanted:
        if scope in permitted and scope not in granted:
            granted.append(scope)
    return " ".join(granted)
