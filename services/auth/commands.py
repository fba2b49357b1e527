"""``python -m services.auth rotate-keys [--activate-in SECONDS]``: add a new signing key."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import timedelta

import asyncpg

from services.auth.config import AuthSettings
from services.auth.signing import rotate
from services.kit.config import ServiceSettings
from services.kit.logging import get_logger
from services.kit.migrations import migrate


async def rotate_keys(settings: ServiceSettings, args: Sequence[str]) -> int:
    """New tokens are signed with the new key once it is active; old keys stay published until
    their last token has expired, then this command prunes them."""
    assert isinstance(settings, AuthSettings)
    parser = argparse.ArgumentParser(prog="python -m services.auth rotate-keys")
    parser.add_argument(
        "--activate-in",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="publish the key now but sign with it only after this delay (lets caches pick it up first)",
    )
    options = parser.parse_args(list(args))
    assert settings.database_url is not None
    from services.auth.app import MIGRATIONS  # the app module imports quart: only when needed

    await migrate(settings.database_url, MIGRATIONS, wait_seconds=settings.db_startup_timeout_seconds)
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        kid = await rotate(
            conn,
            settings.signing_algorithm,
            timedelta(seconds=settings.access_token_ttl_seconds),
            activate_in=timedelta(seconds=options.activate_in),
        )
    finally:
        await conn.close()
    get_logger("auth.keys").info("signing key added", kid=kid, activate_in=options.activate_in)
    print(kid)
    return 0
