#!/usr/bin/env python3
"""Install what a fresh Debian machine lacks for the suite, then start its servers.

``make up``, ``make test``, ``make bench`` and ``.ci/run`` all run this first, so
the README's two commands are the whole set-up. Standard library only (it runs
before the virtualenv exists). Each step prints what it found or did; when
everything is already there it costs a few process lookups and two port checks.

    python3 -m scripts.bootstrap [--check] [--no-servers]

What it installs with apt, only when missing:

====================  =============================================
Without root (and no password-less sudo) or without apt it prints the exact
command to run and exits 2 — never a stack trace.
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.suite import infra


@dataclass(frozen=True)
class Need:
    package: str
    why: str
    present: Callable[[], bool]


def _has_venv() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import venv, ensurepip"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return probe.returncode == 0


def _has_file(*patterns: str) -> Callable[[], bool]:
    return lambda: any(glob.glob(p) for p in patterns)


def _has_cmd(name: str) -> Callable[[], bool]:
    return lambda: shutil.which(name) is not None


NEEDS: tuple[Need, ...] = (
    Need("python3-venv", "the virtualenv", _has_venv),
    Need("postgresql", "the services' databases", _has_file("/usr/lib/postgresql/*/bin/postgres")),
    Need("rabbitmq-server", "the event bus", _has_cmd("rabbitmq-server")),
    Need("redis-server", "todos' page cache (docs/caching.md)", _has_cmd("redis-server")),
    Need("chromium", "the browser tests", _has_file("/usr/bin/chromium")),
    # The browser tests' accessibility check installs axe-core with it (tests/browser/axe.py).
    Need("npm", "the browser tests' accessibility check (axe-core)", _has_cmd("npm")),
    Need("wrk", "make bench", _has_cmd("wrk")),
    Need(
        "fonts-dejavu-core",
        "PDF reports (Latin, Greek, Cyrillic, Hebrew, Arabic)",
        _has_file("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    ),
    Need(
        "fonts-droid-fallback",
        "PDF reports (Chinese, Japanese)",
        _has_file("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
    ),
    Need("fonts-wqy-microhei", "PDF reports (Korean)", _has_file("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")),
    Need("poppler-utils", "pdftoppm: PDF report pages as PNG for docs/images", _has_cmd("pdftoppm")),
    Need("prometheus", "make up's metrics (Prometheus) and the rule checks (promtool)", _has_cmd("promtool")),
)


class BootstrapError(Exception):
    """A step that cannot be done here; the message says what to do instead."""


def say(message: str) -> None:
    print(f"==> {message}", flush=True)


def _sudo_prefix() -> list[str] | None:
    """[] as root, ["sudo", "-n"] with password-less sudo, None when neither."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") is None:
        return None
    probe = subprocess.run(["sudo", "-n", "true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return ["sudo", "-n"] if probe.returncode == 0 else None


def _apt(prefix: list[str], *args: str) -> None:
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    argv = [*prefix, "apt-get", *args]
    say(" ".join(argv))
    done = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, check=False)
    if done.returncode != 0:
        raise BootstrapError(f"`{' '.join(argv)}` failed with exit code {done.returncode} (its output is above)")


def _trust_loopback(prefix: list[str]) -> None:
    """A cluster apt just created asks for passwords over TCP; the suite's admin steps and
    the tests connect as postgres@127.0.0.1 without one, so loopback is trusted (only for
    a cluster this script installed, never an existing one)."""
    for hba in glob.glob("/etc/postgresql/*/main/pg_hba.conf"):
        say(f"trusting loopback connections in {hba} (a cluster installed just now)")
        rules = "host all all 127.0.0.1/32 trust\\nhost all all ::1/128 trust"
        subprocess.run([*prefix, "sed", "-i", f"1i {rules}", hba], check=True)
        version = Path(hba).parent.parent.name
        subprocess.run(
            [*prefix, "pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "reload"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )


def install_missing(check_only: bool) -> None:
    missing = [need for need in NEEDS if not need.present()]
    if not missing:
        say("Debian packages: " + ", ".join(n.package for n in NEEDS) + " — all present")
        return
    names = [n.package for n in missing]
    for need in missing:
        say(f"missing: {need.package} ({need.why})")
    command = "apt-get install -y --no-install-recommends " + " ".join(names)
    if check_only:
        raise BootstrapError(f"missing Debian packages; install them with: sudo {command}")
    if shutil.which("apt-get") is None:
        raise BootstrapError(
            "this machine has no apt-get. Install the equivalents of these Debian packages with your "
            f"package manager, then run make again: {' '.join(names)}"
        )
    prefix = _sudo_prefix()
    if prefix is None:
        raise BootstrapError(
            "installing packages needs root, and sudo asks for a password. Run this once, then make again:\n"
            f"    sudo apt-get update && sudo {command}"
        )
    fresh_postgres = "postgresql" in names
    _apt(prefix, "update", "-q")
    _apt(prefix, "install", "-y", "-q", "--no-install-recommends", *names)
    if fresh_postgres:
        _trust_loopback(prefix)
    still = [n.package for n in NEEDS if not n.present()]
    if still:
        raise BootstrapError(f"apt-get finished but these are still missing: {' '.join(still)}")
    say("installed: " + " ".join(names))


def start_servers() -> None:
    pg = infra.Endpoint.from_url(os.environ.get("QUARTET_PG_ADMIN_URL", "postgresql://127.0.0.1:5432/"), 5432)
    amqp = infra.Endpoint.from_url(os.environ.get("AMQP_URL", "amqp://127.0.0.1:5672/"), 5672)
    cache = infra.Endpoint.from_url(os.environ.get("CACHE_REDIS_URL") or "redis://127.0.0.1:6379/0", 6379)
    try:
        say(f"PostgreSQL on {pg}: {infra.ensure_postgres(pg)}")
        say(f"RabbitMQ on {amqp}: {infra.ensure_rabbitmq(amqp)}")
        say(f"Redis on {cache}: {infra.ensure_redis(cache)}")
    except infra.InfraError as exc:
        raise BootstrapError(str(exc)) from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report what is missing; install nothing")
    parser.add_argument("--no-servers", action="store_true", help="do not start PostgreSQL and RabbitMQ")
    args = parser.parse_args(argv)
    try:
        install_missing(args.check)
        if not args.no_servers:
            start_servers()
    except BootstrapError as exc:
        print(f"\nbootstrap: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
