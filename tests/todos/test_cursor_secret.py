"""CURSOR_SECRET: the public built-in default is refused off loopback (like the worker secret)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.todos.config import DEFAULT_CURSOR_SECRET, TodosSettings
from tests.commands import refuses_to_start
from tests.support import free_port

_OFF_LOOPBACK = [
    {"HOST": "0.0.0.0"},
    {"AUTH_URL": "https://auth.example.com"},
]


@pytest.mark.parametrize("where", _OFF_LOOPBACK)
def test_the_built_in_secret_is_refused_off_loopback(where: dict[str, str]) -> None:
    fields: dict[str, Any] = {k.lower(): v for k, v in where.items()}
    with pytest.raises(ValidationError, match="CURSOR_SECRET"):
        TodosSettings(**fields)
    with pytest.raises(ValidationError, match="CURSOR_SECRET"):
        TodosSettings(cursor_secret=DEFAULT_CURSOR_SECRET, **fields)
    chosen = TodosSettings(cursor_secret="a-real-secret-of-enough-length", **fields)
    assert chosen.cursor_secret.get_secret_value() == "a-real-secret-of-enough-length"


def test_the_built_in_secret_still_serves_a_developer_machine() -> None:
    assert TodosSettings().cursor_secret.get_secret_value() == DEFAULT_CURSOR_SECRET


def test_the_service_refuses_to_start_with_the_default_off_loopback() -> None:
    env = {"PORT": str(free_port()), "HOST": "0.0.0.0"}
    assert "CURSOR_SECRET" in refuses_to_start("services.todos", env, without={"CURSOR_SECRET"})
