"""Key commands of ``python -m services.auth``:

- ``rotate-keys [--activate-in SECONDS]``: add a new signing key.
- ``revoke-key KID [KID...]``: emergency removal of a key from the JWKS (every token it
  signed stops being accepted within the verifiers' JWKS refresh period).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import TypeVar

import asyncpg

from services.auth.config import AuthSettings
from services.auth.key_lifecycle import revoke, rotate
from services.kit.db import Connection
from services.kit.logging import get_logger
from services.kit.migrations import migrate

T = TypeVar("T")


async def rotate_keys(settings: AuthSettings, args: Sequence[str]) -> int:
    """New tokens are signed with the new key once it is active; old keys stay published until
    their last token has expired, then this command prunes them."""
    parser = argparse.ArgumentParser(prog="python -m services.auth rotate-keys")
    parser.add_argument(
        "--activate-in",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="publish the key now but sign with it only after this delay (lets caches pick it up first)",
    )
    options = parser.parse_args(list(args))
    kid = await _with_keys(
        settings,
        lambda conn: rotate(
            conn,
            settings.signing_algorithm,
            settings.key_encryption_keys(),
            _ttl(settings),
            activate_in=timedelta(seconds=options.activate_in),
        ),
    )
    get_logger("auth.keys").info("signing key added", kid=kid, activate_in=options.activate_in)
    print(kid)
    return 0


async def revoke_key(settings: AuthSettings, args: Sequence[str]) -> int:
    """Remove keys from the table and the JWKS now; prints the kid that signs from now on."""
    parser = argparse.ArgumentParser(
        prog="python -m services.auth revoke-key",
        description="Emergency: stop publishing these keys, so every token they signed is refused. "
        "If one of them was signing, the next key signs (an upcoming one, else a new one).",
    )
    parser.add_argument("kids", nargs="+", metavar="KID")
    options = parser.parse_args(list(args))
    try:
        current = await _with_keys(
            settings,
            lambda conn: revoke(
                conn, list(options.kids), settings.signing_algorithm, settings.key_encryption_keys(), _ttl(settings)
            ),
        )
    except LookupError as error:
        print(f"revoke-key: {error}", file=sys.stderr)
        return 2
    print(current)
    return 0


def _ttl(settings: AuthSettings) -> timedelta:
    return timedelta(seconds=settings.access_token_ttl_seconds)


async def _with_keys(settings: AuthSettings, work: Callable[[Connection], Awaitable[T]]) -> T:
    assert settings.database_url is not None
    from services.auth.app import MIGRATIONS  # the app module imports quart: only when needed

    await migrate(settings.database_url, MIGRATIONS, wait_seconds=settings.db_startup_timeout_seconds)
    conn = await asyncpg.connect(settings.database_url, timeout=10)
    try:
        return await work(conn)
    finally:
        await conn.close()
