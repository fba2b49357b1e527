"""scripts/dev.py (`make dev`): a change, seen through watchfiles, restarts exactly the processes that run it."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import watchfiles

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


def test_only_watched_files_count_as_changes() -> None:
    modified = watchfiles.Change.modified
    assert dev.is_source(modified, "/x/services/ping/api.py")
    assert dev.is_source(modified, "/x/services/reports/migrations/0002_more.sql")
    assert not dev.is_source(modified, "/x/services/ping/__pycache__/api.cpython-311.pyc")
    assert not dev.is_source(modified, "/x/web/app.js")


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


def write_later(path: Path, delay: float = 1.0) -> threading.Thread:
    """Append to ``path`` after ``delay`` s, from another thread (the watch blocks this one)."""

    def write() -> None:
        time.sleep(delay)
        with path.open("a") as out:
            out.write("# edited\n")

    thread = threading.Thread(target=write)
    thread.start()
    return thread


def test_an_edit_seen_by_watchfiles_restarts_the_served_process(ping: suite_procs.Proc, watched_tree: Path) -> None:
    before = suite_procs.running_pid("ping", "services.ping")
    assert before is not None
    reloader = dev.Reloader([ping], sys.executable, os.environ, root=watched_tree, ready_timeout=30)
    stop = threading.Event()
    timer = threading.Timer(60, stop.set)  # the watch never blocks the test for longer
    timer.start()
    try:
        watch = dev.changes(watched_tree, stop)
        write_later(watched_tree / "services/todos/api.py")  # not ping's code
        assert reloader.handle(next(watch)) == []
        assert suite_procs.running_pid("ping", "services.ping") == before

        write_later(watched_tree / "services/ping/api.py")
        paths = next(watch)
        assert paths == {watched_tree / "services/ping/api.py"}
        assert reloader.handle(paths) == ["ping"]
    finally:
        stop.set()
        timer.cancel()
    after = suite_procs.running_pid("ping", "services.ping")
    assert after is not None and after != before
    assert not suite_procs.alive(before)
    assert suite_procs.http_ready(ping.port or 0)
