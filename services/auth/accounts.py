"""Accounts: sign-up, sign-in and deletion, each with its checks and events; the routes only translate.

Sign-in checks the brute-force limits of the attempt's source (``throttle.py``) before
the password, and renews the browser's device cookie (``devices.py``) on success, which
keeps that browser out of the account's lockout next time.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass
from uuid import UUID

from services.auth import events
from services.auth.passwords import HashingBusy
from services.auth.runtime import AuthRuntime
from services.auth.schemas import MAX_PASSWORD_LENGTH, has_control_characters, normalize_email
from services.auth.store import users
from services.auth.store.rows import User
from services.kit.client_address import throttle_key
from services.kit.logging import get_logger

log = get_logger("auth.accounts")


async def register(rt: AuthRuntime, email: str, name: str | None, password: str) -> User:
    """Create the account and publish ``user.registered``; raises ``HashingBusy`` or ``users.EmailTaken``."""
    password_hash = await rt.passwords.hash(password)
    async with rt.db.transaction() as conn:
        user = await users.create_user(conn, email, name, password_hash)
        await events.user_registered(conn, user)
    return user


async def delete(rt: AuthRuntime, user_id: UUID) -> bool:
    """Delete the account and every grant it made, publishing ``user.deleted``; ``False`` if it was gone."""
    async with rt.db.transaction() as conn:
        if not await users.delete_user(conn, user_id):
            return False
        await events.user_deleted(conn, user_id)
    return True


class Refusal(enum.Enum):
    INVALID = "invalid"  # unknown account or wrong password: one answer for both
    THROTTLED = "throttled"  # over a limit of the attempt's source
    BUSY = "busy"  # the password hashers are saturated


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: the user (and the renewed device cookie), or why not."""

    user: User | None = None
    refused: Refusal | None = None
    retry_after: int | None = None  # THROTTLED, BUSY
    device_cookie: str = ""


async def sign_in(
    rt: AuthRuntime, email_field: str, password: str, *, address: str, device_cookie: str | None
) -> SignIn:
    """Check the limits of the attempt's source (``address``, account, device cookie), then the password.

    Unknown accounts cost one (dummy) argon2 check and count against the limits exactly like
    existing ones, so neither the answer nor its timing tells whether an account exists.
    """
    email = normalize_email(email_field)[:320]
    async with rt.db.transaction() as conn:
        # An email with a control character (NUL, ...) names no account: no lookup, same answer.
        user = None if has_control_characters(email) else await users.find_user_by_email(conn, email)
        attempt = await rt.throttle.attempt(
            conn, email, throttle_key(address), user.id if user else None, device_cookie
        )
    if attempt.retry_after is not None:
        log.warning(
            "sign-in refused: too many attempts", address=address, source=attempt.source, retry=attempt.retry_after
        )
        return SignIn(refused=Refusal.THROTTLED, retry_after=attempt.retry_after)
    # A password longer than any we accept cannot match: check it against the dummy hash instead.
    candidate = user if user is not None and len(password) <= MAX_PASSWORD_LENGTH else None
    try:
        valid = await rt.passwords.verify(
            candidate.password_hash if candidate else None, password[:MAX_PASSWORD_LENGTH]
        )
    except HashingBusy as busy:
        return SignIn(refused=Refusal.BUSY, retry_after=busy.retry_after)
    if not valid:
        log.info("sign-in failed", address=address, source=attempt.source)
        return SignIn(refused=Refusal.INVALID)
    assert candidate is not None
    user = candidate
    rehashed = None
    if rt.passwords.needs_rehash(user.password_hash):
        with contextlib.suppress(HashingBusy):  # the upgrade can wait for a quieter sign-in
            rehashed = await rt.passwords.rehash(password)
    async with rt.db.transaction() as conn:
        await rt.throttle.succeeded(conn, attempt, user.id)
        if rehashed is not None:
            await users.update_password_hash(conn, user.id, rehashed)
    log.info("signed in", user_id=str(user.id), address=address, source=attempt.source)
    return SignIn(user, device_cookie=rt.devices.renewed(device_cookie, user.id))
