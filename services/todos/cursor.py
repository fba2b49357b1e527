"""Opaque, tamper-evident keyset cursors: the last (created_at, id) of a page, signed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SIG_BYTES = 16


class BadCursor(ValueError):
    """The cursor was not made by this service for this listing."""


@dataclass(frozen=True)
class Position:
    created_at: datetime
    id: UUID


class CursorCodec:
    """Encodes a page position with an HMAC bound to the owner and the filter it was made for."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _sign(self, payload: bytes, scope: str) -> bytes:
        return hmac.new(self._secret, scope.encode() + b"|" + payload, hashlib.sha256).digest()[:_SIG_BYTES]

    def encode(self, position: Position, scope: str) -> str:
        micros = (position.created_at - _EPOCH) // timedelta(microseconds=1)
        payload = f"{micros}.{position.id.hex}".encode()
        token = payload + b"." + base64.urlsafe_b64encode(self._sign(payload, scope))
        return base64.urlsafe_b64encode(token).decode().rstrip("=")

    def decode(self, cursor: str, scope: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            payload, _, sig = raw.rpartition(b".")
            if not hmac.compare_digest(base64.urlsafe_b64decode(sig), self._sign(payload, scope)):
                raise BadCursor("cursor signature mismatch")
            micros, _, hex_id = payload.decode().partition(".")
            return Position(_EPOCH + timedelta(microseconds=int(micros)), UUID(hex=hex_id))
        except (ValueError, binascii.Error, UnicodeDecodeError, OverflowError) as error:
            raise BadCursor("malformed cursor") from error
