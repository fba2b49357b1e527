"""The SPA's SSE parser (web/js/sse.js) under node's test runner: tests/browser/sse_parser.test.mjs."""

from __future__ import annotations

import shutil
import subprocess

from tests.browser.axe import HERE


def test_the_apps_sse_parser_passes_its_node_tests() -> None:
    node = shutil.which("node")
    assert node, "node comes with Debian's npm (scripts/bootstrap.py installs it for the browser tests)"
    done = subprocess.run(
        [node, "--test", str(HERE / "sse_parser.test.mjs")], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "# fail 0" in done.stdout and "# pass 0" not in done.stdout, done.stdout[-2000:]
