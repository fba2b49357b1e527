"""scripts/bootstrap.py: the one step behind `make up`, `make test` and `make bench` on a fresh machine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from scripts import bootstrap

ROOT = Path(__file__).resolve().parent.parent


def _missing(*names: str) -> tuple[bootstrap.Need, ...]:
    return tuple(bootstrap.Need(name, "a test", lambda: False) for name in names)


def _which_without(*absent: str) -> Callable[[str], str | None]:
    real = shutil.which

    def which(name: str, *args: object, **kwargs: object) -> str | None:
        return None if name in absent else real(name)

    return which


def test_on_this_machine_everything_is_present_and_the_servers_answer() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "scripts.bootstrap"], cwd=ROOT, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr
    assert "all present" in done.stdout
    for need in bootstrap.NEEDS:
        assert need.package in done.stdout
    assert "PostgreSQL on 127.0.0.1:5432:" in done.stdout and "RabbitMQ on 127.0.0.1:5672:" in done.stdout


def test_without_root_or_sudo_it_prints_the_exact_command_and_stops(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bootstrap, "NEEDS", _missing("wrk", "chromium"))
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setattr(shutil, "which", _which_without("sudo"))
    assert bootstrap.main(["--no-servers"]) == 2
    err = capsys.readouterr().err
    assert "sudo apt-get update && sudo apt-get install -y --no-install-recommends wrk chromium" in err
    assert "Traceback" not in err


def test_without_apt_it_names_the_packages_and_stops(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(bootstrap, "NEEDS", _missing("rabbitmq-server"))
    monkeypatch.setattr(shutil, "which", _which_without("apt-get"))
    assert bootstrap.main(["--no-servers"]) == 2
    out, err = capsys.readouterr()
    assert "missing: rabbitmq-server" in out
    assert "no apt-get" in err and "rabbitmq-server" in err


def test_check_mode_reports_and_installs_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_apt(*args: object) -> None:
        raise AssertionError("--check must not run apt-get")

    monkeypatch.setattr(bootstrap, "NEEDS", _missing("wrk"))
    monkeypatch.setattr(bootstrap, "_apt", no_apt)
    assert bootstrap.main(["--check", "--no-servers"]) == 2
    assert "apt-get install -y --no-install-recommends wrk" in capsys.readouterr().err
