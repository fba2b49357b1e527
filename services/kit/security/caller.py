"""Who is calling: the typed identity of a request that passed :func:`require_scope`.

::

    @bp.get("/todos")
    @require_scope("todos:read")
    async def list_todos() -> ...:
        owner = current_user_id()  # 403 for a service token: services own nothing

The rule, one place for every service: a client-credentials token (its subject is
the client itself) is a service, never a user, even if its client id looks like a
UUID; a user token's subject is the user's id. Which scopes a handler needs stays
with the handler (``current_caller().has_scopes(...)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from quart import g

from services.kit.problem import Problem
from services.kit.security.claims import Claims


@dataclass(frozen=True)
class Caller:
    """The verified caller of the current request."""

    subject: str
    client_id: str
    scopes: frozenset[str]
    user_id: UUID | None  # None for a service token (or a subject that is no user id)

    @property
    def is_service(self) -> bool:
        """A client-credentials token: the client speaks for itself, not for a user."""
        return self.subject == self.client_id

    def has_scopes(self, *scopes: str) -> bool:
        return self.scopes.issuperset(scopes)

    @classmethod
    def of(cls, claims: Claims) -> Caller:
        return cls(subject=claims.sub, client_id=claims.client_id, scopes=claims.scopes, user_id=claims.user_id)


def current_caller() -> Caller:
    """The caller of the current request; only inside a handler guarded by ``require_scope``."""
    claims = g.get("claims")
    if not isinstance(claims, Claims):
        raise RuntimeError("current_caller() needs a handler guarded by require_scope(...)")
    return Caller.of(claims)


def current_user_id() -> UUID:
    """The user the current request's token speaks for; 403 problem for a token without a user."""
    user_id = current_caller().user_id
    if user_id is None:
        raise Problem(403, "this token does not belong to a user")
    return user_id
