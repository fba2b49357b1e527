"""Access-token verification for resource servers (RFC 9068 JWTs signed by the auth service).

A :class:`TokenVerifier` checks a bearer token locally, without calling the auth
service: the signature against the issuer's JWKS (fetched, cached, refreshed when
an unknown ``kid`` shows up, at most once per ``min_refresh_seconds``, and on a
schedule of ``refresh_seconds`` — :meth:`TokenVerifier.keep_fresh`; see
:mod:`services.kit.security.jwks`), and the claims (``iss``, ``aud``,
``exp``/``nbf``/``iat`` with a small leeway, ``typ`` ``at+jwt``). The algorithm comes
from the key, never from the token: a token whose ``alg`` differs from its key's
(``none``, ``HS256`` signed with a public key...) is rejected before any signature check.

Containment of a stolen or misused key: a token living longer than
``max_lifetime_seconds`` (``exp - iat``, and ``exp - now``) is refused even with a good
signature; verified tokens are cached at most ``cache_seconds``; and when a refresh finds
a ``kid`` gone from the JWKS (``revoke-key``), its cached tokens are dropped at once.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key

from services.kit.security.claims import Claims
from services.kit.security.jwks import ALLOWED_ALGORITHMS, JwksFetcher, JwksKeys, http_fetcher, parse_jwks
from services.kit.security.token_cache import TokenCache

__all__ = [
    "Claims",
    "InvalidToken",
    "JwksFetcher",
    "KeysUnavailable",
    "TokenCache",
    "TokenVerifier",
    "parse_jwks",
]

ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
MAX_TOKEN_BYTES = 8 * 1024


class InvalidToken(Exception):
    """The token is not acceptable. ``str(error)`` is safe to show to the caller."""


class KeysUnavailable(Exception):
    """The issuer's keys cannot be fetched right now, so no token can be judged (answer 503, not 401)."""


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, decoded but not trusted."""
    if len(token) > MAX_TOKEN_BYTES:
        raise InvalidToken("the token is too large")
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("the token is not a signed JWT")
    segment = parts[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError):
        raise InvalidToken("the token header is malformed") from None
    if not isinstance(header, dict):
        raise InvalidToken("the token header is malformed")
    return header


class TokenVerifier:
    """Verify access tokens of ``issuer`` meant for ``audience`` against the issuer's JWKS.

    ``session`` is the process's aiohttp session (or a function returning it).
    ``fetch_jwks`` replaces the HTTP fetch (the auth service reads its own keys).
    """

    def __init__(
        self,
        issuer: str,
        audience: str,
        jwks_url: str,
        session: aiohttp.ClientSession | Callable[[], aiohttp.ClientSession] | None = None,
        leeway: int = 30,
        *,
        min_refresh_seconds: float = 10.0,
        refresh_seconds: float = 300.0,
        fetch_timeout_seconds: float = 5.0,
        fetch_jwks: JwksFetcher | None = None,
        cache_size: int = 10_000,
        cache_seconds: float = 60.0,
        max_lifetime_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if fetch_jwks is None:
            if session is None:
                raise ValueError("TokenVerifier needs an aiohttp session or a fetch_jwks function")
            fetch_jwks = http_fetcher(jwks_url, session)
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.max_lifetime_seconds = max_lifetime_seconds
        self._clock = clock
        self.cache = TokenCache(cache_size, clock, cache_seconds)
        self.keys = JwksKeys(
            jwks_url,
            fetch_jwks,
            self.cache,
            min_refresh_seconds=min_refresh_seconds,
            refresh_seconds=refresh_seconds,
            fetch_timeout_seconds=fetch_timeout_seconds,
        )

    @property
    def has_keys(self) -> bool:
        """Whether the issuer's keys have been fetched at least once."""
        return self.keys.loaded

    async def verify(self, token: str) -> Claims:
        """Return the claims of a valid access token; raise :class:`InvalidToken` otherwise."""
        cached = self.cache.get(token)
        if cached is not None:
            return cached
        claims, kid = await self._verify(token)
        if kid in self.keys:  # not if a refresh removed the key while this token was checked
            self.cache.put(token, claims, kid)
        return claims

    async def refresh(self, *, force: bool = False) -> None:
        """Fetch the JWKS now (unless one was tried less than ``min_refresh_seconds`` ago)."""
        await self.keys.refresh(force=force)

    async def keep_fresh(self) -> None:
        """Refetch the JWKS every ``refresh_seconds`` (with a little jitter) until cancelled.

        Run it as a task for the life of the process: a key removed from the JWKS stops
        being accepted (and its cached tokens are dropped) within one period, even when no
        token with an unknown ``kid`` ever asks for a refresh.
        """
        await self.keys.keep_fresh()

    async def _verify(self, token: str) -> tuple[Claims, str]:
        header = unverified_header(token)
        if header.get("typ") not in ACCESS_TOKEN_TYPES:
            raise InvalidToken("the token is not an access token (typ must be at+jwt)")
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS:
            raise InvalidToken("the token's algorithm is not accepted")
        if not isinstance(kid, str) or not 0 < len(kid) <= 200:
            raise InvalidToken("the token names no valid key id")
        key, key_alg = await self._key(kid)
        if alg != key_alg:
            raise InvalidToken("the token's algorithm does not match its key")
        try:
            decoded = jwt.decode(token, key, algorithms=[key_alg])
            self._claims_registry().validate(decoded.claims)
        except JoseError as error:
            raise InvalidToken(_describe(error)) from None
        claims = _to_claims(decoded.claims)
        self._check_lifetime(claims)
        return claims, kid

    def _check_lifetime(self, claims: Claims) -> None:
        # A signing key that mints long-lived tokens (stolen, or a bug) must not outlive its
        # revocation by years: cap what any token may claim, whoever signed it.
        remaining = claims.exp - self._clock()
        if claims.exp - claims.iat > self.max_lifetime_seconds or remaining > self.max_lifetime_seconds + self.leeway:
            raise InvalidToken(
                f"the token's lifetime is longer than accepted here ({int(self.max_lifetime_seconds)} s at most)"
            )

    async def _key(self, kid: str) -> tuple[Key, str]:
        found = await self.keys.get(kid)
        if found is None and self.keys.last_fetch_failed:
            raise KeysUnavailable("the issuer's keys cannot be fetched right now")
        if found is None:
            raise InvalidToken("the token was signed with an unknown key")
        return found

    def _claims_registry(self) -> jwt.JWTClaimsRegistry:
        return jwt.JWTClaimsRegistry(
            leeway=self.leeway,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            sub={"essential": True},
            client_id={"essential": True},
            jti={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )


def _describe(error: JoseError) -> str:
    name = type(error).__name__
    if name == "ExpiredTokenError":
        return "the token has expired"
    if name == "BadSignatureError":
        return "the token's signature is not valid"
    if name in {"InvalidClaimError", "MissingClaimError"}:
        return f"the token's claims are not acceptable ({error.description})"
    return "the token is not valid"


def _to_claims(raw: Mapping[str, Any]) -> Claims:
    scope = raw.get("scope", "")
    aud = raw["aud"]
    if not isinstance(scope, str) or not isinstance(raw["client_id"], str):
        raise InvalidToken("the token's claims are not acceptable (scope, client_id)")
    return Claims(
        sub=raw["sub"],
        client_id=raw["client_id"],
        scopes=frozenset(scope.split()),
        jti=raw["jti"],
        iat=int(raw["iat"]),
        exp=int(raw["exp"]),
        issuer=raw["iss"],
        audience=(aud,) if isinstance(aud, str) else tuple(aud),
        raw=dict(raw),
    )
