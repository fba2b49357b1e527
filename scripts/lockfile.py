#!/usr/bin/env python3
"""The one lock: build a virtualenv from uv.lock with every hash required, update it, check it.

pyproject.toml holds ranges; uv.lock (uv's universal lock: one file for Python 3.11, 3.12 and
3.13, markers where they differ) holds the exact versions with their sha256 hashes. Standard
library only: it runs before the virtualenv exists, with the interpreter the venv is built on.

    python3 -m scripts.lockfile venv [--venv .venv]   make venv: .venv on this interpreter, from the lock
    python3 -m scripts.lockfile lock [--upgrade]      make lock: re-resolve uv.lock from pyproject.toml
    python3 -m scripts.lockfile check                 make lint: fails when pyproject.toml and uv.lock disagree
    python3 -m scripts.lockfile uv-requirement        the hashed requirement line of the locked uv

``venv`` (re)builds the venv when its interpreter's version is not this one's, installs uv itself
first (`pip install --require-hashes` with the hashes uv.lock holds for it), then
``uv export --locked`` (the lock as a hashed requirements file) into ``uv pip sync --require-hashes``
(exact: what the lock does not hold is removed), then the project itself, editable, built offline
by the locked setuptools. The Dockerfile installs the same export with ``pip --require-hashes``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "uv.lock"
# uv never downloads an interpreter of its own here: the venv is built on the one running this.
UV_ENV = {"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
EXPORT = ["export", "--locked", "--format", "requirements-txt", "--no-emit-project", "--no-header"]
OUT_OF_DATE = "pyproject.toml and uv.lock disagree: run `make lock` (then commit uv.lock)"


def say(message: str) -> None:
    print(message, flush=True)


def version_of(python: Path | str) -> str | None:
    """``3.13.0`` for an interpreter that runs, ``None`` for one that does not."""
    try:
        found = subprocess.run(
            [str(python), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return found.stdout.strip()


def this_version() -> str:
    return ".".join(str(part) for part in sys.version_info[:3])


def uv_requirement(lock: Path = LOCK) -> str:
    """``uv==X --hash=sha256:… …``: the locked uv with the hash of every file the lock lists for it."""
    packages = tomllib.loads(lock.read_text())["package"]
    entry = next((p for p in packages if p["name"] == "uv"), None)
    if entry is None:
        raise SystemExit(f"error: {lock.name} holds no uv (pyproject.toml's dev group must list it)")
    files = [entry["sdist"]] if "sdist" in entry else []
    files += entry.get("wheels", [])
    hashes = sorted({f["hash"] for f in files if f.get("hash", "").startswith("sha256:")})
    if not hashes:
        raise SystemExit(f"error: {lock.name} lists no sha256 hash for uv {entry['version']}")
    return f"uv=={entry['version']} " + " ".join(f"--hash={h}" for h in hashes)


def run(argv: list[str]) -> None:
    done = subprocess.run(argv, cwd=ROOT, env={**os.environ, **UV_ENV}, text=True, capture_output=True)
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        if "needs to be updated" in output:
            raise SystemExit(f"error: {OUT_OF_DATE}\n{output}")
        raise SystemExit(f"error: {' '.join(argv[:3])} … exited {done.returncode}\n{output}")
    if done.stdout.strip():
        print(done.stdout.rstrip(), flush=True)


def ensure_interpreter(venv: Path) -> None:
    """The venv runs this interpreter's version, or is built anew on it."""
    python = venv / "bin" / "python"
    have = version_of(python) if python.exists() else None
    want = this_version()
    if venv.exists() and have != want:
        say(f"==> rebuilding {venv.name}: it runs Python {have or '(none that starts)'}, PYTHON is {want}")
        shutil.rmtree(venv)
    if not python.exists():
        say(f"==> creating {venv.name} with Python {want} ({sys.executable})")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)


def ensure_uv(venv: Path) -> Path:
    """The venv's uv, the version uv.lock holds, installed hash-checked when missing or another version."""
    uv = venv / "bin" / "uv"
    locked = uv_requirement().split()[0].removeprefix("uv==")
    if uv.exists():
        have = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=False).stdout.split()
        if have[1:2] == [locked]:
            return uv
    python = venv / "bin" / "python"
    # A venv made without pip (`--without-pip`, or pip removed by hand) gets it back first.
    if subprocess.run([str(python), "-m", "pip", "--version"], capture_output=True, check=False).returncode != 0:
        subprocess.run([str(python), "-m", "ensurepip", "-q"], check=True)
    say(f"==> installing uv {locked} into {venv.name} (pip --require-hashes, hashes from uv.lock)")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="uv-requirement-") as requirement:
        requirement.write(uv_requirement() + "\n")
        requirement.flush()
        pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
        run([*pip, "--require-hashes", "--no-deps", "-r", requirement.name])
    return uv


def build_venv(venv: Path) -> None:
    ensure_interpreter(venv)
    uv = ensure_uv(venv)
    python = str(venv / "bin" / "python")
    say(f"==> installing into {venv.name} from uv.lock (uv pip sync --require-hashes)")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", prefix="quartet-lock-") as requirements:
        exported = subprocess.run(
            [str(uv), *EXPORT, "--all-groups"],
            cwd=ROOT,
            env={**os.environ, **UV_ENV},
            capture_output=True,
            text=True,
            check=False,
        )
        if exported.returncode != 0:
            output = exported.stderr.strip()
            reason = OUT_OF_DATE if "needs to be updated" in output else "uv export failed"
            raise SystemExit(f"error: {reason}\n{output}")
        requirements.write(exported.stdout)
        requirements.flush()
        run([str(uv), "pip", "sync", "-q", "--require-hashes", "--python", python, requirements.name])
    # The project itself (editable: the checkout is the code), its dependencies already in place,
    # built by the locked setuptools now in the venv, so nothing unhashed is fetched for it.
    run([str(uv), "pip", "install", "-q", "--python", python, "--no-deps", "--no-build-isolation", "-e", "."])


def lock(venv: Path, upgrade: bool) -> None:
    if not (venv / "bin" / "python").exists():
        ensure_interpreter(venv)
    uv = ensure_uv(venv)
    say(f"==> uv lock{' --upgrade' if upgrade else ''}")
    done = subprocess.run(
        [str(uv), "lock", *(["--upgrade"] if upgrade else [])], cwd=ROOT, env={**os.environ, **UV_ENV}, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.returncode)


def check(venv: Path) -> None:
    """``uv lock --locked``: exits non-zero when resolving pyproject.toml would change uv.lock."""
    uv = ensure_uv(venv)
    done = subprocess.run(
        [str(uv), "lock", "--locked"], cwd=ROOT, env={**os.environ, **UV_ENV}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"error: {OUT_OF_DATE}\n{(done.stdout + done.stderr).strip()}")
    say("uv.lock agrees with pyproject.toml")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["venv", "lock", "check", "uv-requirement"])
    parser.add_argument("--venv", default=".venv", help="the virtualenv (relative to the checkout)")
    parser.add_argument("--upgrade", action="store_true", help="lock: move every package to its newest allowed release")
    args = parser.parse_args(argv)
    venv = (ROOT / args.venv).resolve()
    if args.command == "uv-requirement":
        print(uv_requirement())
    elif args.command == "venv":
        build_venv(venv)
    elif args.command == "lock":
        lock(venv, args.upgrade)
    else:
        check(venv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
