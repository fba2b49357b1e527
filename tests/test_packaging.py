"""pyproject.toml: the license it declares is shipped, and its build backend can read that metadata."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_declared_mit_license_is_in_the_repository() -> None:
    assert PYPROJECT["project"]["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert re.search(r"^Copyright \(c\) \d{4} The Quartet authors$", text, re.MULTILINE)


def test_the_build_backend_is_new_enough_for_an_spdx_license_string() -> None:
    # PEP 639 (license = "MIT", License-Expression metadata) is supported from setuptools 77 on.
    requires = PYPROJECT["build-system"]["requires"]
    setuptools = next(r for r in requires if r.startswith("setuptools"))
    match = re.fullmatch(r"setuptools>=(\d+)(\.\d+)*", setuptools)
    assert match and int(match.group(1)) >= 77, setuptools


def test_every_pinned_dependency_is_pinned_the_same_in_constraints() -> None:
    constraints = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        constraints[re.sub(r"[-_.]+", "-", name).lower()] = version
    declared = PYPROJECT["project"]["dependencies"] + PYPROJECT["project"]["optional-dependencies"]["dev"]
    for requirement in declared:
        name, _, version = requirement.partition("==")
        assert constraints.get(re.sub(r"[-_.]+", "-", name).lower()) == version, requirement
