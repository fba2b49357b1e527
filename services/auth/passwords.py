"""argon2id password and client-secret hashing, off the event loop and bounded in concurrency."""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from services.auth.config import AuthSettings

# Verification reads the cost parameters from the hash itself, so one plain hasher verifies all.
_VERIFIER = PasswordHasher(type=Type.ID)


def verify_secret(hashed: str, secret: str) -> bool:
    """Does ``secret`` match the argon2 ``hashed``? Constant time in the secret; blocks (call off the loop)."""
    try:
        return _VERIFIER.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


class Passwords:
    """Hash and verify passwords in a small dedicated thread pool (each hash holds the memory cost)."""

    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.password_time_cost,
            memory_cost=settings.password_memory_kib,
            parallelism=settings.password_parallelism,
            type=Type.ID,
        )
        self._executor = ThreadPoolExecutor(max_workers=settings.hash_threads, thread_name_prefix="argon2")
        self._dummy_hash: str | None = None

    async def start(self) -> None:
        # A real hash with the real cost: unknown accounts are "checked" against it, so a
        # wrong email takes as long as a wrong password.
        self._dummy_hash = await self.hash(secrets.token_urlsafe(32))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._hasher.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        """Check ``password``; with no hash (unknown account) spend the same time and answer False."""
        target = hashed if hashed is not None else self._dummy_hash
        if target is None:
            raise RuntimeError("Passwords.start() was not awaited")
        matched = await asyncio.get_running_loop().run_in_executor(self._executor, verify_secret, target, password)
        return matched and hashed is not None

    def verify_from_thread(self, hashed: str, secret: str) -> bool:
        """For a worker thread outside this pool (authlib's): check in the pool and wait."""
        return self._executor.submit(verify_secret, hashed, secret).result(timeout=30)

    def needs_rehash(self, hashed: str) -> bool:
        return self._hasher.check_needs_rehash(hashed)
