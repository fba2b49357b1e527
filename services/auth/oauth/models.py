"""What the token generator hands authlib: the response body, with the record to keep beside it."""

from __future__ import annotations

from typing import Any
from uuid import UUID


class IssuedToken(dict[str, Any]):
    """A token response body, with what the server must record about it kept off the wire."""

    def __init__(self, body: dict[str, Any], *, jti: UUID, issued_at: int, expires_at: int, scope: str) -> None:
        super().__init__(body)
        self.jti = jti
        self.issued_at = issued_at
        self.expires_at = expires_at
        self.scope = scope
