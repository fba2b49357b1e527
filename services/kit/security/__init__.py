"""Token checks for resource servers and service tokens for callers.

- :class:`TokenVerifier` verifies RFC 9068 access tokens locally against the
  issuer's JWKS (signature and claims).
- :func:`install_auth` wires a verifier into a kit app; :func:`require_scope`
  guards a handler (401 / 403 as problem+json with ``WWW-Authenticate``).
- :mod:`~services.kit.security.challenge`: the one bearer parser, RFC 6750
  challenges and the 401/403/503 token problems, shared with the gateway.
- :func:`current_user_id` / :func:`current_caller`: who is calling (a typed :class:`Caller`).
- :class:`ClientCredentialsTokenSource` fetches and caches a service token.
"""

from services.kit.security.bearer import (
    BEARER_SCHEME_NAME,
    BEARER_SECURITY_SCHEME,
    DEFAULT_AUDIENCE,
    authenticate,
    current_verifier,
    install_auth,
    require_scope,
)
from services.kit.security.caller import Caller, current_caller, current_user_id
from services.kit.security.challenge import (
    bearer_challenge,
    bearer_token,
    insufficient_scope,
    invalid_token,
    keys_unavailable,
    missing_token,
    verified_claims,
)
from services.kit.security.claims import Claims
from services.kit.security.token_source import ClientCredentialsTokenSource, TokenRequestFailed
from services.kit.security.verifier import InvalidToken, TokenVerifier, parse_jwks

__all__ = [
    "BEARER_SCHEME_NAME",
    "BEARER_SECURITY_SCHEME",
    "DEFAULT_AUDIENCE",
    "Caller",
    "Claims",
    "ClientCredentialsTokenSource",
    "InvalidToken",
    "TokenRequestFailed",
    "TokenVerifier",
    "authenticate",
    "bearer_challenge",
    "bearer_token",
    "current_caller",
    "current_user_id",
    "current_verifier",
    "install_auth",
    "insufficient_scope",
    "invalid_token",
    "keys_unavailable",
    "missing_token",
    "parse_jwks",
    "require_scope",
    "verified_claims",
]
