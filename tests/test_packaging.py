"""pyproject.toml and uv.lock: the license it declares is shipped, its build backend can read that
metadata, and the one hashed lock agrees with the ranges it declares."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from scripts import lockfile

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LOCK = tomllib.loads((ROOT / "uv.lock").read_text())


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


def _requirements() -> list[Requirement]:
    declared = PYPROJECT["project"]["dependencies"] + PYPROJECT["dependency-groups"]["dev"]
    declared += [line for lines in PYPROJECT["project"].get("optional-dependencies", {}).values() for line in lines]
    return [Requirement(line) for line in declared]


def test_pyproject_holds_ranges_and_the_dev_tools_in_a_dependency_group() -> None:
    # Exact versions live in uv.lock only: pyproject.toml says what is compatible.
    # Extras are for users of the package (quartet_client's `client`), never the dev tools.
    assert "dev" not in PYPROJECT["project"].get("optional-dependencies", {})
    for requirement in _requirements():
        operators = {spec.operator for spec in requirement.specifier}
        assert operators == {">=", "<"}, f"{requirement}: a range from a release to the next major/minor"
    # Every Python the suite runs on: no cap.
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]) == SpecifierSet(">=3.11")


def test_the_lock_holds_every_declared_requirement_as_pyproject_says_it() -> None:
    # What `uv lock --locked` (make lint) compares, read without uv: the project's entry in
    # uv.lock records the requirements it was resolved from.
    project = next(p for p in LOCK["package"] if p["name"] == "quartet")
    locked = {
        (canonicalize_name(r["name"]), SpecifierSet(r.get("specifier", "")), r.get("marker"))
        for r in project["metadata"]["requires-dist"]
    }
    locked |= {
        (canonicalize_name(r["name"]), SpecifierSet(r.get("specifier", "")), "dev")
        for r in project["metadata"]["requires-dev"]["dev"]
    }
    declared = {
        (canonicalize_name(r.name), r.specifier, group)
        for group, lines in (
            (None, PYPROJECT["project"]["dependencies"]),
            ("dev", PYPROJECT["dependency-groups"]["dev"]),
        )
        for r in map(Requirement, lines)
    }
    declared |= {
        (canonicalize_name(r.name), r.specifier, f"extra == '{extra}'")
        for extra, lines in PYPROJECT["project"].get("optional-dependencies", {}).items()
        for r in map(Requirement, lines)
    }
    assert declared == locked
    assert LOCK["requires-python"] == PYPROJECT["project"]["requires-python"]


def test_every_locked_package_has_a_sha256_hash_for_each_file_and_one_version_per_python() -> None:
    versions: dict[str, set[str]] = {}
    for package in LOCK["package"]:
        if package["name"] == "quartet":
            continue
        assert package["source"] == {"registry": "https://pypi.org/simple"}, package["name"]
        files = ([package["sdist"]] if "sdist" in package else []) + package.get("wheels", [])
        assert files, package["name"]
        for file in files:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", file["hash"]), (package["name"], file)
        versions.setdefault(package["name"], set()).add(package["version"])
    # A package locked twice differs by Python version only (markers); Quart 0.23 needs 3.13.
    assert {name for name, found in versions.items() if len(found) > 1} <= {"quart"}


def test_each_supported_python_gets_a_resolution_and_quart_matches_it() -> None:
    quart = {p["version"]: p.get("resolution-markers", []) for p in LOCK["package"] if p["name"] == "quart"}
    assert set(quart) == {"0.22.0", "0.23.1"}
    assert "python_full_version < '3.13'" in quart["0.22.0"]
    assert "python_full_version == '3.13.*'" in quart["0.23.1"]


def _uv_lock_locked(folder: Path) -> subprocess.CompletedProcess[str]:
    uv = Path(sys.executable).parent / "uv"  # the venv's, installed from uv.lock by make venv
    return subprocess.run(
        [str(uv), "lock", "--locked"],
        cwd=folder,
        env={**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_hand_edited_pin_without_a_new_lock_fails_the_lock_check(tmp_path: Path) -> None:
    # make lint runs `uv lock --locked` (scripts/lockfile.py check): a copy of the project's
    # metadata passes it as committed, and fails it once a pin is edited by hand.
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    committed = _uv_lock_locked(tmp_path)
    assert committed.returncode == 0, committed.stderr
    pyproject = tmp_path / "pyproject.toml"
    text = pyproject.read_text()
    pytest_range = next(r for r in PYPROJECT["dependency-groups"]["dev"] if r.startswith("pytest>="))
    locked_pytest = next(p["version"] for p in LOCK["package"] if p["name"] == "pytest")
    # A pin the locked version still satisfies: uv compares the declared requirements, not only versions.
    pyproject.write_text(text.replace(f'"{pytest_range}"', f'"pytest=={locked_pytest}"'))
    edited = _uv_lock_locked(tmp_path)
    assert edited.returncode != 0
    assert "needs to be updated" in edited.stderr


def test_the_locked_uv_requirement_is_hashed_for_the_venv_and_the_image() -> None:
    line = lockfile.uv_requirement()
    uv = next(p for p in LOCK["package"] if p["name"] == "uv")
    assert line.startswith(f"uv=={uv['version']} --hash=sha256:")
    assert line.count("--hash=sha256:") == len(uv["wheels"]) + ("sdist" in uv)
