"""`make up` (scripts/suite/) gives auth and the reports worker one random secret per checkout."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from scripts.suite import procs as suite_procs
from scripts.suite.plan import all_procs
from scripts.suite.plan import plan as build_plan
from scripts.suite.secrets import CURSOR_SECRET, SIGNING_KEK, WORKER_SECRET, ensure_secrets
from services.auth.config import DEFAULT_WORKER_SECRET
from services.todos.config import DEFAULT_CURSOR_SECRET

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(suite_procs, "RUN_DIR", tmp_path)
    return tmp_path


def test_the_secret_is_generated_once_private_and_reused(run_dir: Path) -> None:
    first = ensure_secrets({})[WORKER_SECRET]
    path = run_dir / "secrets.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(first) >= 32 and first != DEFAULT_WORKER_SECRET
    assert ensure_secrets({})[WORKER_SECRET] == first
    # The caller's environment wins, and the stored one stays.
    assert ensure_secrets({WORKER_SECRET: "mine"})[WORKER_SECRET] == "mine"
    assert ensure_secrets({})[WORKER_SECRET] == first


def test_looser_permissions_are_tightened_when_the_file_is_rewritten(run_dir: Path) -> None:
    path = run_dir / "secrets.env"
    path.write_text("OTHER=1\n")
    path.chmod(0o644)
    ensure_secrets({})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "OTHER=1" in path.read_text()


def test_auth_reports_and_the_worker_get_the_same_secret_and_no_one_else(run_dir: Path) -> None:
    environ = {**ensure_secrets({})}
    the_plan = build_plan(environ)
    procs = {p.name: p for p in all_procs(the_plan)}
    secret = environ[WORKER_SECRET]
    for name in ("auth", "reports", "reports-worker"):
        assert procs[name].env[WORKER_SECRET] == secret, name
    for name in ("todos", "ping", "gateway"):
        assert WORKER_SECRET not in procs[name].env, name


def test_todos_alone_gets_a_generated_cursor_secret(run_dir: Path) -> None:
    environ = {**ensure_secrets({})}
    secret = environ[CURSOR_SECRET]
    assert len(secret) >= 32 and secret != DEFAULT_CURSOR_SECRET
    assert secret != environ[WORKER_SECRET]
    procs = {p.name: p for p in all_procs(build_plan(environ))}
    assert procs["todos"].env[CURSOR_SECRET] == secret
    for name in ("auth", "reports", "reports-worker", "ping", "gateway"):
        assert CURSOR_SECRET not in procs[name].env, name


def test_only_auth_gets_a_signing_kek_and_it_is_a_valid_one(run_dir: Path) -> None:
    from services.auth.config import AuthSettings

    environ = {**ensure_secrets({})}
    procs = {p.name: p for p in all_procs(build_plan(environ))}
    kek = procs["auth"].env[SIGNING_KEK]
    assert AuthSettings(signing_kek=kek).key_encryption_keys()
    assert ensure_secrets({})[SIGNING_KEK] == kek  # kept: losing it would lock the keys away
    for name, proc in procs.items():
        if proc.module != "services.auth":
            assert SIGNING_KEK not in proc.env, name
        else:
            assert proc.env[SIGNING_KEK] == kek, name  # every instance opens the same keys
