"""Token checks for resource servers and service tokens for callers.

- :class:`TokenVerifier` verifies RFC 9068 access tokens locally against the
  issuer's JWKS (signature and claims).
- :func:`install_auth` wires a verifier into a kit app; :func:`require_scope`
  guards a handler (401 / 403 as problem+json with ``WWW-Authenticate``).
- :class:`ClientCredentialsTokenSource` fetches and caches a service token.
"""

from services.kit.security.bearer import (
    BEARER_SCHEME_NAME,
    BEARER_SECURITY_SCHEME,
    DEFAULT_AUDIENCE,
    authenticate,
    bearer_token,
    current_verifier,
    install_auth,
    require_scope,
)
from services.kit.security.token_source import ClientCredentialsTokenSource, TokenRequestFailed
from services.kit.security.verifier import Claims, InvalidToken, TokenVerifier, parse_jwks

__all__ = [
    "BEARER_SCHEME_NAME",
    "BEARER_SECURITY_SCHEME",
    "DEFAULT_AUDIENCE",
    "Claims",
    "ClientCredentialsTokenSource",
    "InvalidToken",
    "TokenRequestFailed",
    "TokenVerifier",
    "authenticate",
    "bearer_token",
    "current_verifier",
    "install_auth",
    "parse_jwks",
    "require_scope",
]
