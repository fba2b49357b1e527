"""A client of the suite for programs outside it: scripts, the benchmarks, the tests.

It talks to the suite as any outside program does — HTTP through the public contract
(docs/architecture.md) — and imports nothing of the services:

- :class:`quartet_client.auth.AuthClient`: sign-in by the authorization code flow with
  PKCE through the login form (what the SPA does), refresh, client credentials,
  revocation, introspection.
- :class:`quartet_client.api.QuartetApi`: typed calls to the public API (todos,
  reports, ping, ``/auth/me``) with a bearer token.
"""

from __future__ import annotations

from quartet_client.api import QuartetApi
from quartet_client.auth import AuthClient, Authorization, Tokens, authorization
from quartet_client.errors import ApiError, Refused, SignInFailed

__all__ = [
    "ApiError",
    "AuthClient",
    "Authorization",
    "QuartetApi",
    "Refused",
    "SignInFailed",
    "Tokens",
    "authorization",
]
