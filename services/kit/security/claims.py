"""The verified claims of an access token: what every check after the signature reads.

A module of its own so the token cache (:mod:`.token_cache`), the verifier and the
gateway's route table share the type without importing one another.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID


@dataclass(frozen=True)
class Claims:
    """The verified claims of an access token."""

    sub: str
    client_id: str
    scopes: frozenset[str]
    jti: str
    iat: int
    exp: int
    issuer: str
    audience: tuple[str, ...]
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def user_id(self) -> UUID | None:
        """The user the token speaks for; ``None`` for a service token (client credentials).

        A client-credentials token's subject is the client itself, so it is never a user,
        even if a client id happened to look like a UUID.
        """
        if self.sub == self.client_id:
            return None
        try:
            return UUID(self.sub)
        except ValueError:
            return None

    def has_scopes(self, *scopes: str) -> bool:
        return self.scopes.issuperset(scopes)
