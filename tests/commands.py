"""Run a program of this repository as a developer would type it, and judge how it ended.

``python -m services.auth rotate-keys``, ``python -m services.kit.events dlq``,
``scripts/seed.py``, ``python -m services.todos serve`` with a setting it must refuse:
each runs from the repository root with this process's environment plus the test's
settings, its output captured as text. :func:`run_python` never judges the exit status;
:func:`succeeded`, :func:`last_line` and :func:`refuses_to_start` say what the test expects.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Collection, Mapping

from tests.support import ROOT

Done = subprocess.CompletedProcess[str]


def run_python(
    *args: str, env: Mapping[str, str] | None = None, without: Collection[str] = (), timeout: float = 60
) -> Done:
    """``python *args`` from the repository root: this process's environment less ``without``, plus ``env``."""
    inherited = {name: value for name, value in os.environ.items() if name not in without}
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env={**inherited, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def succeeded(done: Done) -> str:
    """The standard output of a run that had to exit 0 (all it wrote is the failure message otherwise)."""
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def last_line(done: Done) -> str:
    """The last line a successful run printed (a command's answer, after its log lines)."""
    return succeeded(done).strip().splitlines()[-1]


def refuses_to_start(module: str, env: Mapping[str, str], without: Collection[str] = ()) -> str:
    """``python -m <module> serve`` with settings it must refuse: it exits 2 saying why on stderr, without a
    traceback (the kit's runner); returns all it wrote."""
    done = run_python("-m", module, "serve", env=env, without=without)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.strip() and "Traceback" not in done.stderr, done.stderr
    return done.stdout + done.stderr
