"""The ``Idempotency-Key`` protocol: a retried create replays the first response instead of creating again.

A handler reads the header (``IdempotentRequest.of``), and in the transaction of its change:

1. ``claim``: no key, or the key is now ours → go ahead (``None``). The key is
   held by an earlier request → its stored response (a ``Replay``), or 409 while
   that request is still in progress, or 422 if it asked for something else.
2. make the change (and its outbox event);
3. ``remember`` the response, in the same transaction: a rolled-back change leaves
   no claim behind, so the retry runs again.

Keys are per owner. The SQL stays with the service that owns the table (its store
module implements :class:`IdempotencyKeys`); a claim older than the service's TTL is
taken over as if it did not exist.

    idem = IdempotentRequest.of(request.headers.get("Idempotency-Key"), data.content)
    async with db.transaction() as conn:
        if (replay := await idem.claim(conn, store, owner, ttl_hours)) is not None:
            return Todo.model_validate(replay.body), replay.status, replay.headers
        todo = await store.create_todo(conn, owner, data.content)
        await idem.remember(conn, store, owner, 201, body, location=f"/todos/{todo.id}")
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from services.kit.db import Connection
from services.kit.problem import Problem

HEADER = "Idempotency-Key"
_KEY = re.compile(r"^[\x21-\x7e]{1,200}$")


@dataclass(frozen=True)
class StoredResponse:
    """The first response to a key (``status`` is ``None`` in the row while that request runs)."""

    request_hash: str
    status: int
    body: dict[str, Any]
    location: str | None


class IdempotencyKeys(Protocol):
    """The service's SQL for its keys table (a store module satisfies it)."""

    async def claim_idempotency_key(
        self, conn: Connection, owner: UUID, key: str, request_hash: str, ttl_hours: int
    ) -> bool: ...

    async def stored_response(self, conn: Connection, owner: UUID, key: str) -> StoredResponse | None: ...

    async def store_response(
        self, conn: Connection, owner: UUID, key: str, status: int, body: dict[str, Any], location: str | None
    ) -> None: ...


@dataclass(frozen=True)
class Replay:
    """The stored first response, to send again (``headers`` mark it replayed)."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IdempotentRequest:
    """One request's ``Idempotency-Key`` (or none) and the hash of what it asked for."""

    key: str | None
    request_hash: str

    @classmethod
    def of(cls, key: str | None, request: str) -> IdempotentRequest:
        """``key``: the header's value; 400 unless 1..200 visible ASCII. ``request``: what a replay must match."""
        if key is not None and not _KEY.match(key):
            raise Problem(400, f"{HEADER} must be 1..200 visible ASCII characters")
        return cls(key, hashlib.sha256(request.encode()).hexdigest())

    async def claim(self, conn: Connection, keys: IdempotencyKeys, owner: UUID, ttl_hours: int) -> Replay | None:
        """``None``: go ahead and make the change. A ``Replay``: answer with it, change nothing."""
        if self.key is None or await keys.claim_idempotency_key(conn, owner, self.key, self.request_hash, ttl_hours):
            return None
        stored = await keys.stored_response(conn, owner, self.key)
        if stored is None:
            raise Problem(409, f"a request with this {HEADER} is still in progress", headers={"Retry-After": "1"})
        if stored.request_hash != self.request_hash:
            raise Problem(422, f"this {HEADER} was used with a different request body")
        headers = {"Idempotent-Replayed": "true"}
        if stored.location:
            headers["Location"] = stored.location
        return Replay(stored.status, stored.body, headers)

    async def remember(
        self,
        conn: Connection,
        keys: IdempotencyKeys,
        owner: UUID,
        status: int,
        body: dict[str, Any],
        *,
        location: str | None = None,
    ) -> None:
        """Store the response for replays (nothing without a key); in the change's transaction."""
        if self.key is not None:
            await keys.store_response(conn, owner, self.key, status, body, location)
