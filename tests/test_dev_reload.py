"""scripts/dev.py (`make dev`): a change restarts exactly the processes that run the changed code."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts import dev
from scripts.suite import procs as suite_procs
from scripts.suite.plan import all_procs
from scripts.suite.plan import plan as build_plan
from tests.support import ROOT, free_port


def test_changed_code_restarts_the_processes_that_run_it() -> None:
    running = all_procs(build_plan({"REPORTS_INSTANCES": "2"}))

    def restarted(*paths: str) -> set[str]:
        return {p.name for p in dev.affected([ROOT / path for path in paths], running)}

    everything = {p.name for p in running}
    assert restarted("services/reports/api.py") == {"reports", "reports-2", "reports-worker"}
    assert restarted("services/reports/migrations/0002_more.sql") == {"reports", "reports-2", "reports-worker"}
    assert restarted("services/todos/store.py", "services/ping/api.py") == {"todos", "todos-2", "ping", "ping-2"}
    assert restarted("gateway/proxy.py") == {"gateway"}
    assert restarted("services/kit/events/relay.py") == everything
    assert restarted("services/kit/docs.html") == everything


def test_only_watched_files_count_as_changes(tmp_path: Path) -> None:
    (tmp_path / "services" / "ping" / "__pycache__").mkdir(parents=True)
    (tmp_path / "gateway").mkdir()
    (tmp_path / "web").mkdir()
    for name in ("services/ping/api.py", "services/ping/__pycache__/api.cpython-311.pyc", "gateway/a.py", "web/app.js"):
        (tmp_path / name).write_text("x")
    assert set(dev.snapshot(tmp_path)) == {tmp_path / "services/ping/api.py", tmp_path / "gateway/a.py"}


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(suite_procs, "RUN_DIR", tmp_path / "run")
    return tmp_path / "run"


@pytest.fixture
def watched_tree(tmp_path: Path) -> Path:
    """A stand-in for the checkout's watched folders (the served process runs the real code)."""
    root = tmp_path / "tree"
    for name in ("services/ping/api.py", "services/todos/api.py", "gateway/app.py"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("# code\n")
    return root


@pytest.fixture
def ping(run_dir: Path) -> Iterator[suite_procs.Proc]:
    port = free_port()
    proc = suite_procs.Proc("ping", "services.ping", port, {"PORT": str(port), "INSTANCE": "ping"})
    pid = suite_procs.start(proc, sys.executable, os.environ)
    suite_procs.wait_ready([(proc, pid)], 30)
    yield proc
    pid_now = suite_procs.running_pid("ping", "services.ping")
    if pid_now is not None:
        suite_procs.stop([("ping", pid_now)], 20)


def touch(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))


def test_touching_a_file_restarts_the_served_process(ping: suite_procs.Proc, watched_tree: Path) -> None:
    before = suite_procs.running_pid("ping", "services.ping")
    assert before is not None
    reloader = dev.Reloader([ping], sys.executable, os.environ, root=watched_tree, ready_timeout=30)
    assert reloader.poll() == []  # nothing changed yet

    touch(watched_tree / "services/todos/api.py")  # not ping's code
    assert reloader.poll() == []
    assert suite_procs.running_pid("ping", "services.ping") == before

    touch(watched_tree / "services/ping/api.py")
    assert reloader.poll() == ["ping"]
    after = suite_procs.running_pid("ping", "services.ping")
    assert after is not None and after != before
    assert not suite_procs.alive(before)
    assert suite_procs.http_ready(ping.port or 0)
    assert reloader.poll() == []  # the change is handled once
