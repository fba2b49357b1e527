"""The docs point at code that exists: every code reference in them resolves.

The docs (README.md, docs/*.md, every README.md under services/) name files,
``module.symbol``s, make targets, settings and ``python -m`` modules in inline code
spans, and other pages in links. Each of those is looked up here, so a rename in the
code that leaves a page behind fails this test instead of misleading a reader:

- a path (``services/todos/store.py``, ``scripts/suite/``) exists, from the top of the
  repository or from the page's folder; placeholders (``<name>``, ``*``, ``NNNN``) are
  not paths;
- ``services.kit.tasks.run_in_background`` imports (the longest module prefix) and has
  the rest as attributes; ``python -m services.todos`` names a module;
- ``make seed`` is a target of the Makefile;
- an environment-style name (``CORS_ORIGINS``, ``REQUEST_TIMEOUT_SECONDS=5``) is a
  setting some ``Settings`` class reads, or a name the code defines or reads;
- a relative link goes to a file that exists;
- a ``from services.x import y`` in a code block imports.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings
from quart import Quart

ROOT = Path(__file__).resolve().parent.parent
CODE_ROOTS = ("services", "gateway", "tests", "scripts", "bench", "quartet_client")
SETTINGS_MODULES = (
    "services.kit.config",
    "services.auth.config",
    "services.todos.config",
    "services.ping.config",
    "services.reports.config",
    "services.live.config",
    "gateway.config",
)
PATH_SUFFIXES = (".py", ".md", ".sql", ".yaml", ".yml", ".toml", ".json", ".js", ".css", ".html", ".txt", ".png", ".sh")
# Where a short path in a page is found besides the top and the page's folder (`js/app.js`, `base/secret.yaml`).
SEARCHED = tuple(ROOT / d for d in ("services", "services/kit", "scripts", "web", "deploy/k8s", "deploy"))
# Written at run time (.gitignore), not in the tree: a page may name them.
GENERATED = (".run/", "tests/artifacts/", ".venv/")
# Read by libraries we configure, not by our Settings (the OpenTelemetry SDK's own variables).
FOREIGN_PREFIXES = ("OTEL_",)
PLACEHOLDER = re.compile(r"[<>*{}]|NNNN|\.\.\.|…")
FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
LINK = re.compile(r"\]\(([^)\s]+)\)")
DOTTED = re.compile(rf"(?<![\w.])((?:{'|'.join(CODE_ROOTS)})(?:\.\w+)+)")
ENV_NAME = re.compile(r"([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)(?:=\S*)?")
FROM_IMPORT = re.compile(rf"^\s*from ((?:{'|'.join(CODE_ROOTS)})[\w.]*) import ([\w, ]+)$", re.MULTILINE)
RUN_MODULE = re.compile(r"python3? -m ([\w.]+)")
MAKE = re.compile(r"make ([a-z][a-z-]*)\b")


def doc_pages() -> list[Path]:
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "services").rglob("README.md"))]
    return [p for p in pages if p.is_file()]


def code_spans(page: Path) -> Iterator[str]:
    """The inline code spans of a page, outside fenced blocks."""
    text = FENCE.sub("", page.read_text())
    for match in SPAN.finditer(text):
        yield match.group(1).strip()


@cache
def make_targets() -> frozenset[str]:
    makefile = (ROOT / "Makefile").read_text()
    return frozenset(re.findall(r"^([a-z][a-z-]*):", makefile, re.MULTILINE))


def _names_of(field_name: str, alias: object) -> set[str]:
    names = {field_name.upper()}
    if isinstance(alias, str):
        names.add(alias.upper())
    elif isinstance(alias, AliasChoices):
        names |= {choice.upper() for choice in alias.choices if isinstance(choice, str)}
    return names


@cache
def setting_names() -> frozenset[str]:
    """Every environment variable a Settings class of the suite reads (field names and their aliases)."""
    names: set[str] = set()
    for module_name in SETTINGS_MODULES:
        module = importlib.import_module(module_name)
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseSettings) and value.__module__ == module_name:
                prefix = str(value.model_config.get("env_prefix", "")).upper()
                for field_name, info in value.model_fields.items():
                    names |= {prefix + n for n in _names_of(field_name, info.validation_alias or info.alias)}
    return frozenset(names)


@cache
def names_in_code() -> frozenset[str]:
    """Upper-case names the code defines (module constants) or reads (string literals: env keys, headers)."""
    names: set[str] = set()
    for root in CODE_ROOTS:
        for path in (ROOT / root).rglob("*.py"):
            if path == Path(__file__).resolve():  # its own examples of missing names
                continue
            tree = ast.parse(path.read_text())
            for node in ast.walk(tree):
                if isinstance(node, ast.Constant) and isinstance(node.value, str):
                    names |= set(ENV_NAME.findall(node.value))
                elif isinstance(node, ast.Name) and node.id.isupper():
                    names.add(node.id)
    for path in [ROOT / "Makefile", ROOT / "compose.yaml", ROOT / ".env.example", *(ROOT / "deploy").rglob("*.yaml")]:
        if path.is_file():
            names |= set(re.findall(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", path.read_text()))
    # Quart's own configuration keys (BODY_TIMEOUT, RESPONSE_TIMEOUT), which the kit sets.
    names |= set(Quart.default_config)
    return frozenset(names | setting_names())


def resolves(dotted: str) -> bool:
    """``a.b.c.d``: the longest importable module prefix, then the rest as attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            found = importlib.util.find_spec(module_name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            continue
        target: object = importlib.import_module(module_name)
        for attribute in parts[cut:]:
            if not hasattr(target, attribute):
                return False
            target = getattr(target, attribute)
        return True
    return False


def looks_like_path(span: str) -> bool:
    if PLACEHOLDER.search(span) or " " in span or "://" in span or span.startswith(("-", "/", "~", "$", *GENERATED)):
        return False
    if not re.fullmatch(r"[\w./-]+(:\d+(-\d+)?)?", span):
        return False
    first = span.split("/")[0]
    return ("/" in span and (ROOT / first).exists()) or (span.endswith(PATH_SUFFIXES) and "/" in span)


def path_exists(span: str, page: Path) -> bool:
    path = re.sub(r":\d+(-\d+)?$", "", span).rstrip("/")
    return any((base / path).exists() for base in (ROOT, page.parent, *SEARCHED))


@cache
def file_names() -> frozenset[str]:
    """The names of the files in the tree (a page may name ``api.py`` or ``worker.py`` alone)."""
    skipped = {".git", ".venv", "node_modules", ".run", ".mypy_cache", ".ruff_cache", ".pytest_cache"}
    names: set[str] = set()
    for path in ROOT.rglob("*"):
        if not skipped.intersection(path.relative_to(ROOT).parts):
            names.add(path.name)
    return frozenset(names)


def broken_references(page: Path) -> list[str]:
    broken = []
    for span in code_spans(page):
        if re.fullmatch(r"[\w-]+\.(?:py|sql)", span) and span not in file_names():
            broken.append(f"file `{span}`")
        if looks_like_path(span) and not path_exists(span, page):
            broken.append(f"path `{span}`")
        for dotted in DOTTED.findall(span):
            if not PLACEHOLDER.search(span) and not dotted.endswith(PATH_SUFFIXES) and not resolves(dotted):
                broken.append(f"symbol `{dotted}`")
        for module in RUN_MODULE.findall(span):
            if not PLACEHOLDER.search(span) and importlib.util.find_spec(module.rstrip(".")) is None:
                broken.append(f"module `python -m {module}`")
        for target in MAKE.findall(span):
            if target not in make_targets():
                broken.append(f"make target `make {target}`")
        whole = ENV_NAME.fullmatch(span)
        if whole and not whole.group(1).startswith(FOREIGN_PREFIXES) and whole.group(1) not in names_in_code():
            broken.append(f"setting `{whole.group(1)}`")
    for block in FENCE.finditer(page.read_text()):  # code blocks: their imports from our packages
        for module, names in FROM_IMPORT.findall(block.group(0)):
            for name in (n.strip() for n in names.split(",")):
                if not resolves(f"{module}.{name}"):
                    broken.append(f"import `from {module} import {name}`")
    for target in LINK.findall(FENCE.sub("", page.read_text())):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        if not (page.parent / target.split("#")[0]).exists():
            broken.append(f"link ({target})")
    return broken


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_code_reference_in_the_docs_resolves(page: Path) -> None:
    broken = broken_references(page)
    assert not broken, f"{page.relative_to(ROOT)} refers to what does not exist:\n  " + "\n  ".join(broken)


def test_the_checks_see_a_missing_symbol_path_target_and_setting(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "`services.kit.tasks.no_such_function`, `services/kit/no_such_module.py`, `no_such_file.py`,"
        " `make no-such-target`, `NO_SUCH_SETTING_ANYWHERE=1`, [gone](no-such-page.md)\n"
        "`services.kit.tasks`, `services/kit/tasks.py`, `make lint`, `REQUEST_TIMEOUT_SECONDS`\n"
    )
    assert broken_references(page) == [
        "symbol `services.kit.tasks.no_such_function`",
        "path `services/kit/no_such_module.py`",
        "file `no_such_file.py`",
        "make target `make no-such-target`",
        "setting `NO_SUCH_SETTING_ANYWHERE`",
        "link (no-such-page.md)",
    ]


def test_the_architecture_page_shows_ping_whole_as_it_is() -> None:
    """docs/architecture.md shows every module of services/ping/ (but the package marker) exactly as it is."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    block = page.split("Ping, whole (`services/ping/`", 1)[1].split("```python\n", 1)[1].split("\n```", 1)[0]
    shown = dict(re.findall(r"^# ---- (\S+)\n(.*?)(?=\n\n\n# ---- |\Z)", block, re.MULTILINE | re.DOTALL))
    modules = {p.name for p in (ROOT / "services" / "ping").glob("*.py")} - {"__init__.py"}
    assert shown.keys() == modules
    for name, text in shown.items():
        assert text.strip() == (ROOT / "services" / "ping" / name).read_text().strip(), name
