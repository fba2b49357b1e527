"""Bearer tokens over HTTP, one way for the kit's services and the gateway alike.

- :func:`bearer_token` parses ``Authorization: Bearer <token>``.
- :func:`bearer_challenge` builds the RFC 6750 §3 ``WWW-Authenticate`` value.
- :func:`missing_token`, :func:`invalid_token`, :func:`insufficient_scope` and
  :func:`keys_unavailable` are the problems (401, 401, 403, 503) with their challenge.
- :func:`verified_claims` puts them together: header in, verified :class:`Claims` out,
  or one of those problems raised.

The parse is the stricter of the two it replaces (kit and gateway took whatever
followed ``Bearer `` and left the rest to the verifier): the scheme is
case-insensitive and separated by one or more spaces; the credentials must be
exactly one RFC 6750 ``b64token`` (``[A-Za-z0-9-._~+/]+=*``, which every JWT is) of
at most :data:`MAX_TOKEN_BYTES` characters. Another scheme, or ``Bearer`` with
nothing after it, is no bearer token (``None``: 401 without an error code); two
tokens, a too long one or characters a token cannot have are an invalid token
(401 ``error="invalid_token"``) — the answer such a header always got, only now
decided before any JOSE parsing.
"""

from __future__ import annotations

import re

from services.kit.problem import Problem
from services.kit.security.claims import Claims
from services.kit.security.verifier import MAX_TOKEN_BYTES, InvalidToken, KeysUnavailable, TokenVerifier

REALM = "quartet"
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
# RFC 6750 §3: error_description and scope are %x20-21 / %x23-5B / %x5D-7E (no '"', no '\').
_NOT_QUOTABLE = re.compile(r"[^\x20-\x7e]|[\\]")


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; ``None`` when there is none.

    Raises :class:`InvalidToken` when the header is ``Bearer`` but its credentials
    cannot be a token (more than one, too long, or characters outside ``b64token``).
    """
    scheme, _, credentials = (authorization or "").partition(" ")
    token = credentials.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("the token is too large")
    if len(token.split()) != 1:
        raise InvalidToken("the Authorization header must carry exactly one bearer token")
    if not _B64TOKEN.fullmatch(token):
        raise InvalidToken("the token has characters a bearer token cannot have")
    return token


def bearer_challenge(
    error: str | None = None, *, description: str | None = None, scope: str | None = None, realm: str = REALM
) -> str:
    """The ``WWW-Authenticate`` value: ``Bearer realm="…"[, error="…"][, error_description="…"][, scope="…"]``."""
    params = {"realm": realm, "error": error, "error_description": description, "scope": scope}
    return "Bearer " + ", ".join(f'{name}="{_quotable(value)}"' for name, value in params.items() if value)


def missing_token() -> Problem:
    """401 for a request without a bearer token (the challenge names no error, RFC 6750 §3.1)."""
    return Problem(401, "an access token is required", headers={"WWW-Authenticate": bearer_challenge()})


def invalid_token(error: InvalidToken) -> Problem:
    """401 for a token that is not acceptable; ``str(error)`` is safe to show."""
    challenge = bearer_challenge("invalid_token", description=str(error))
    return Problem(401, str(error), headers={"WWW-Authenticate": challenge})


def insufficient_scope(*scopes: str, detail: str | None = None) -> Problem:
    """403 for a valid token without every one of ``scopes`` (named in the challenge when given)."""
    needed = " ".join(scopes)
    challenge = bearer_challenge("insufficient_scope", scope=needed or None)
    return Problem(
        403, detail or f"insufficient_scope: this needs the scope {needed}", headers={"WWW-Authenticate": challenge}
    )


def keys_unavailable() -> Problem:
    """503 while the issuer's keys cannot be fetched: no token can be judged, so none is refused."""
    return Problem(503, "tokens cannot be checked right now; try again", headers={"Retry-After": "1"})


async def verified_claims(verifier: TokenVerifier, authorization: str | None) -> Claims:
    """The verified claims of the ``Authorization`` header's bearer token, else the problem to answer."""
    try:
        token = bearer_token(authorization)
        if token is None:
            raise missing_token()
        return await verifier.verify(token)
    except InvalidToken as error:
        raise invalid_token(error) from None
    except KeysUnavailable:
        raise keys_unavailable() from None


def _quotable(text: str) -> str:
    return _NOT_QUOTABLE.sub("", text.replace('"', "'"))
