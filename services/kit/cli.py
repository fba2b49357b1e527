"""``python -m services.<name> [serve|migrate|<extra command>]`` for every service."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from quart import Quart

from services.kit.config import ServiceSettings
from services.kit.logging import configure_logging, get_logger
from services.kit.migrations import MigrationSource, migrate
from services.kit.runner import read_settings

S = TypeVar("S", bound=ServiceSettings)
Command = Callable[[S, Sequence[str]], Coroutine[Any, Any, int]]


def main(
    settings_type: type[S],
    create_app: Callable[[S], Quart],
    migrations: Sequence[MigrationSource] = (),
    commands: Mapping[str, Command[S]] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Run the command named on the command line (default ``serve``); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    name = args.pop(0) if args else "serve"
    settings = read_settings(settings_type)
    if settings is None:
        return 2
    configure_logging(settings.service_name, settings.log_level)
    log = get_logger("kit.cli")
    extra = dict(commands or {})
    if name == "serve":
        from services.kit.http_process import HttpProcess  # hypercorn only when serving
        from services.kit.runner import run

        return run(settings, lambda s: HttpProcess(create_app(s), s))
    if name == "migrate":
        if settings.database_url is None:
            log.info("no database, nothing to migrate")
            return 0
        applied = asyncio.run(
            migrate(settings.database_url, migrations, wait_seconds=settings.db_startup_timeout_seconds)
        )
        log.info("migrations done", applied=applied)
        return 0
    if name in extra:
        return asyncio.run(extra[name](settings, args))
    known = ", ".join(["serve", "migrate", *extra])
    print(f"unknown command {name!r}; known: {known}", file=sys.stderr)
    return 2
