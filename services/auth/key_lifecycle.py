"""Adding, sealing, rotating and revoking signing keys (each under the key lock, any instance).

- :func:`prepare_keys` (every start): seal rows written in plaintext before migration 0002,
  re-wrap data keys of an older KEK with the current one, create the first key, and check
  that the current key opens — else the service refuses to start and says what to do.
- :func:`rotate` (``rotate-keys``): a new key, active now or later; prunes keys no token needs.
- :func:`revoke` (``revoke-key KID``): the key leaves the table and the JWKS at once; if it was
  the one signing, the next key signs (an already published upcoming key, else a new one).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg

from services.auth.sealing import KeyEncryptionKeys, SealError
from services.auth.signing import generate_key, key_state
from services.auth.store import keys as store
from services.kit.db import Connection
from services.kit.logging import get_logger

log = get_logger("auth.keys")


class KeysUnusable(Exception):
    """The current signing key cannot be opened with the configured KEKs (``str()`` says what to do)."""


@dataclass(frozen=True)
class Prepared:
    sealed_legacy: tuple[str, ...]
    rewrapped: tuple[str, ...]
    created: str | None


async def prepare_keys(conn: Connection, alg: str, keks: KeyEncryptionKeys, token_ttl: timedelta) -> Prepared:
    """Make the key table ready to sign from (see the module docstring)."""
    sealed_legacy: list[str] = []
    rewrapped: list[str] = []
    created: str | None = None
    async with conn.transaction():
        await store.lock_keys(conn)
        rows = await store.list_keys(conn)
        for row in rows:
            if row.sealed is None and row.legacy_private_jwk is not None:
                await store.store_sealed(conn, row.kid, keks.seal(row.kid, row.legacy_private_jwk))
                sealed_legacy.append(row.kid)
            elif row.sealed is not None and row.sealed.kek_id != keks.current_id and keks.knows(row.sealed.kek_id):
                await store.store_sealed(conn, row.kid, keks.rewrap(row.kid, row.sealed))
                rewrapped.append(row.kid)
        if not rows:
            created = await _add(conn, alg, keks, datetime.now(UTC))
        # The key signing now and every upcoming one must open, or tokens cannot be issued.
        now = datetime.now(UTC)
        rows = await store.list_keys(conn)
        current = key_state(rows, token_ttl, now).current
        for row in rows:
            if row.sealed is None or (row.kid != current.kid and row.activated_at <= now):
                continue  # retired keys only verify, with their public half
            try:
                keks.open(row.kid, row.sealed)
            except SealError as error:
                raise KeysUnusable(
                    f"{error}. Restore the KEK that sealed it into SIGNING_KEK (a comma-separated list: "
                    "the first seals, all open), or, if it is lost, add a key this KEK can open with "
                    "`python -m services.auth rotate-keys` (and `revoke-key` the unreadable ones)."
                ) from None
    if sealed_legacy:
        log.warning(
            "plaintext signing keys sealed; they were readable in the database until now, so rotate "
            "(`rotate-keys`) and revoke the old ones (`revoke-key`) if a dump or backup may have leaked",
            kids=sealed_legacy,
        )
        with contextlib.suppress(asyncpg.PostgresError):  # best effort: drop the old row versions too
            await store.compact_keys(conn)
    if rewrapped:
        log.info("signing keys re-wrapped with the current KEK", kids=rewrapped, kek_id=keks.current_id)
    return Prepared(tuple(sealed_legacy), tuple(rewrapped), created)


async def rotate(
    conn: Connection, alg: str, keks: KeyEncryptionKeys, token_ttl: timedelta, activate_in: timedelta = timedelta(0)
) -> str:
    """Add a new signing key (active after ``activate_in``); prune keys no token can need. Returns its kid."""
    async with conn.transaction():
        await store.lock_keys(conn)
        kid = await _add(conn, alg, keks, datetime.now(UTC) + activate_in)
        state = key_state(await store.list_keys(conn), token_ttl)
        await store.delete_keys(conn, list(state.expired_kids))
    return kid


async def revoke(conn: Connection, kids: list[str], alg: str, keks: KeyEncryptionKeys, token_ttl: timedelta) -> str:
    """Delete the keys ``kids`` at once; returns the kid that signs from now on.

    If a revoked key was signing, its successor is activated now: the earliest upcoming key
    (already published, so caches know it), else a new key. An older, retired key never signs
    again: it may share whatever compromised the revoked one.
    """
    async with conn.transaction():
        await store.lock_keys(conn)
        now = datetime.now(UTC)
        rows = await store.list_keys(conn)
        unknown = sorted(set(kids) - {row.kid for row in rows})
        if unknown:
            raise LookupError(f"no signing key with kid {', '.join(unknown)}")
        before = key_state(rows, token_ttl, now)
        signing = before.current.kid
        # Keys no token can need go too: with the revoked key gone, an old key's successor
        # would change and it would be published again.
        await store.delete_keys(conn, sorted({*kids, *before.expired_kids}))
        if signing in kids:
            upcoming = [row for row in rows if row.kid not in kids and row.activated_at > now]  # oldest first
            if upcoming:
                await store.activate(conn, upcoming[0].kid, now)
            else:
                await _add(conn, alg, keks, now)
        current = key_state(await store.list_keys(conn), token_ttl, now).current.kid
    log.warning("signing keys revoked", kids=kids, signing_kid=current)
    return current


async def _add(conn: Connection, alg: str, keks: KeyEncryptionKeys, activated_at: datetime) -> str:
    key = generate_key(alg)
    kid = str(key.kid)
    await store.add_key(
        conn, kid, alg, keks.seal(kid, key.as_dict(private=True)), key.as_dict(private=False), activated_at
    )
    return kid
