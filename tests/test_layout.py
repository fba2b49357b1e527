"""The shape every service keeps (docs/architecture.md): rules a reviewer would otherwise check by eye."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from tests.support import ROOT

MAX_LINES = 300
CODE = sorted(p for folder in ("services", "gateway") for p in (ROOT / folder).rglob("*.py"))


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


@pytest.mark.parametrize("path", CODE, ids=_relative)
def test_a_long_module_says_why(path: Path) -> None:
    """A module over 300 lines is split, or its docstring gives the reason (and says "300 lines")."""
    source = path.read_text()
    lines = source.count("\n")
    if lines <= MAX_LINES:
        return
    docstring = ast.get_docstring(ast.parse(source)) or ""
    assert "300 lines" in docstring, f"{_relative(path)} has {lines} lines and its docstring does not say why"


def test_no_untyped_state_bag_or_settings_downcasts() -> None:
    """Service state is typed (docs/architecture.md#state): no string-keyed bag, no isinstance on settings."""
    offenders = []
    for path in CODE:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if re.search(r"\.extras\b|assert isinstance\(settings", line):
                offenders.append(f"{_relative(path)}:{number}: {line.strip()}")
    assert offenders == []
