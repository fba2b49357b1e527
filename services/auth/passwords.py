"""argon2id password and client-secret hashing, off the event loop and bounded in concurrency."""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from services.auth.config import AuthSettings

T = TypeVar("T")

# Verification reads the cost parameters from the hash itself, so one plain hasher verifies all.
_VERIFIER = PasswordHasher(type=Type.ID)


def verify_secret(hashed: str, secret: str) -> bool:
    """Does ``secret`` match the argon2 ``hashed``? Constant time in the secret; blocks (call off the loop)."""
    try:
        return _VERIFIER.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


class HashingBusy(Exception):
    """Too many hashes are already waiting for a thread: answer 503 with ``retry_after`` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the password hashing queue is full")
        self.retry_after = retry_after


class Passwords:
    """Hash and verify passwords in a small dedicated thread pool (each hash holds the memory cost).

    The pool's queue is bounded: at most ``hash_queue_limit`` jobs wait for a thread, and
    new-account hashes (registration) may fill only half of that, so a flood of sign-ups
    leaves room for sign-ins. Work over the bound raises :class:`HashingBusy` at once
    instead of queueing without limit.
    """

    def __init__(self, settings: AuthSettings) -> None:
        self._hasher = PasswordHasher(
            time_cost=settings.password_time_cost,
            memory_cost=settings.password_memory_kib,
            parallelism=settings.password_parallelism,
            type=Type.ID,
        )
        self._executor = ThreadPoolExecutor(max_workers=settings.hash_threads, thread_name_prefix="argon2")
        self._threads = settings.hash_threads
        self._queue_limit = settings.hash_queue_limit
        self._in_flight = 0  # running + waiting; only touched on the event loop
        self._dummy_hash: str | None = None

    async def start(self) -> None:
        # A real hash with the real cost: unknown accounts are "checked" against it, so a
        # wrong email takes as long as a wrong password.
        self._dummy_hash = await self._run(None, self._hasher.hash, secrets.token_urlsafe(32))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def _run(self, waiting_allowed: int | None, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn`` in the pool if at most ``waiting_allowed`` jobs wait (None: no bound)."""
        if waiting_allowed is not None and self._in_flight >= self._threads + waiting_allowed:
            # Roughly how long the queue ahead takes to drain, at ~a second per round of hashes.
            raise HashingBusy(retry_after=max(1, math.ceil(self._in_flight / self._threads)))
        job = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        # Counted until the job itself ends, even if its caller gives up (a disconnect).
        self._in_flight += 1
        job.add_done_callback(self._job_done)
        return await asyncio.shield(job)

    def _job_done(self, _job: asyncio.Future[Any]) -> None:
        self._in_flight -= 1

    async def hash(self, password: str) -> str:
        """Hash a new password (registration): refused with :class:`HashingBusy` past half the queue."""
        return await self._run(max(1, self._queue_limit // 2), self._hasher.hash, password)

    async def rehash(self, password: str) -> str:
        """Hash after a successful sign-in (cost upgrade); waits like a sign-in does."""
        return await self._run(self._queue_limit, self._hasher.hash, password)

    async def verify(self, hashed: str | None, password: str) -> bool:
        """Check ``password``; with no hash (unknown account) spend the same time and answer False.

        Raises :class:`HashingBusy` when the whole queue is full.
        """
        target = hashed if hashed is not None else self._dummy_hash
        if target is None:
            raise RuntimeError("Passwords.start() was not awaited")
        matched = await self._run(self._queue_limit, verify_secret, target, password)
        return matched and hashed is not None

    def verify_from_thread(self, hashed: str, secret: str) -> bool:
        """For a worker thread outside this pool (authlib's): check in the pool and wait."""
        return self._executor.submit(verify_secret, hashed, secret).result(timeout=30)

    def needs_rehash(self, hashed: str) -> bool:
        return self._hasher.check_needs_rehash(hashed)
