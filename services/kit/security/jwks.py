"""The issuer's signing keys as a resource server holds them: the JWKS fetched, parsed and kept fresh.

:class:`JwksKeys` serves ``kid`` → (public key, algorithm) for
:class:`~services.kit.security.verifier.TokenVerifier`. The document is refetched when
the verifier asks (an unknown ``kid``: at most once per ``min_refresh_seconds``, sooner
after a failed fetch), and on a schedule of ``refresh_seconds`` (:meth:`JwksKeys.keep_fresh`).
When a refresh finds a ``kid`` gone from the JWKS (``revoke-key``), the tokens cached
under it are dropped at once. Only asymmetric signing keys are kept, each with the one
algorithm it may verify.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, JWKRegistry, Key, OKPKey, RSAKey

from services.kit.logging import get_logger
from services.kit.security.token_cache import TokenCache

log = get_logger("kit.security")

# Asymmetric algorithms only: a shared-secret or unsigned token is never an access token here.
ALLOWED_ALGORITHMS = frozenset({"RS256", "ES256", "EdDSA", "Ed25519"})
MAX_JWKS_BYTES = 256 * 1024

JwksFetcher = Callable[[], Awaitable[Mapping[str, Any]]]


def key_algorithm(key: Key) -> str | None:
    """The one algorithm a JWK may verify: its ``alg`` member, else implied by its type."""
    declared = key.get("alg")
    if isinstance(declared, str):
        return declared if declared in ALLOWED_ALGORITHMS else None
    if isinstance(key, RSAKey):
        return "RS256"
    if isinstance(key, ECKey) and key.get("crv") == "P-256":
        return "ES256"
    if isinstance(key, OKPKey) and key.get("crv") == "Ed25519":
        return "Ed25519"
    return None


def parse_jwks(document: Mapping[str, Any]) -> dict[str, tuple[Key, str]]:
    """``kid`` → (public key, algorithm) for every usable signing key of a JWKS document."""
    keys: dict[str, tuple[Key, str]] = {}
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("a JWKS document needs a 'keys' list")
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
            continue
        public = {k: v for k, v in entry.items() if k not in {"d", "p", "q", "dp", "dq", "qi"}}
        try:
            key = JWKRegistry.import_key(public)
        except (JoseError, ValueError, TypeError):
            log.warning("skipping a JWKS key that does not import", kid=entry["kid"])
            continue
        alg = key_algorithm(key)
        if alg is not None:
            keys[entry["kid"]] = (key, alg)
    return keys


def http_fetcher(url: str, session: aiohttp.ClientSession | Callable[[], aiohttp.ClientSession]) -> JwksFetcher:
    """Fetch the JWKS document at ``url`` (at most ``MAX_JWKS_BYTES``) with ``session`` (or the one it returns)."""

    async def fetch() -> Mapping[str, Any]:
        client = session() if callable(session) else session
        async with client.get(url, headers={"Accept": "application/json"}) as response:
            response.raise_for_status()
            body = await response.content.read(MAX_JWKS_BYTES + 1)
        if len(body) > MAX_JWKS_BYTES:
            raise ValueError("the JWKS document is too large")
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("the JWKS document is not an object")
        return document

    return fetch


class JwksKeys:
    """The issuer's current signing keys, fetched with ``fetch`` (``url`` names it in logs)."""

    def __init__(
        self,
        url: str,
        fetch: JwksFetcher,
        cache: TokenCache,
        *,
        min_refresh_seconds: float,
        refresh_seconds: float,
        fetch_timeout_seconds: float,
    ) -> None:
        self.url = url
        self._fetch = fetch
        self._cache = cache  # the verified tokens, dropped by kid when their key leaves
        self._keys: dict[str, tuple[Key, str]] = {}
        self._fetched_at = float("-inf")  # last successful fetch
        self._attempted_at = float("-inf")  # last attempt, successful or not
        self._last_fetch_failed = False
        self._lock = asyncio.Lock()
        self.min_refresh_seconds = min_refresh_seconds
        self.refresh_seconds = refresh_seconds
        self.fetch_timeout_seconds = fetch_timeout_seconds

    @property
    def loaded(self) -> bool:
        """Whether the keys have been fetched at least once."""
        return bool(self._keys)

    def __contains__(self, kid: object) -> bool:
        return kid in self._keys

    @property
    def last_fetch_failed(self) -> bool:
        return self._last_fetch_failed

    async def get(self, kid: str) -> tuple[Key, str] | None:
        """The key ``kid`` and its algorithm, refreshing first when it is unknown or the keys are stale."""
        stale = time.monotonic() - self._fetched_at > self.refresh_seconds
        if kid not in self._keys or stale:
            await self.refresh()
        return self._keys.get(kid)

    async def keep_fresh(self) -> None:
        """Refetch the JWKS every ``refresh_seconds`` (with a little jitter) until cancelled."""
        while True:
            await asyncio.sleep(self.refresh_seconds * random.uniform(0.8, 1.0))
            try:
                await self.refresh(force=True)
            except Exception as error:  # never let the schedule die; refresh() logs fetch failures
                log.warning("scheduled JWKS refresh failed", error=f"{type(error).__name__}: {error}")

    async def refresh(self, *, force: bool = False) -> None:
        """Fetch the JWKS now (unless one was tried less than ``min_refresh_seconds`` ago)."""
        async with self._lock:
            # After a failed fetch (the issuer starting, say) try again soon, not after the full window.
            window = min(1.0, self.min_refresh_seconds) if self._last_fetch_failed else self.min_refresh_seconds
            if not force and time.monotonic() - self._attempted_at < window:
                return
            self._attempted_at = time.monotonic()
            try:
                document = await asyncio.wait_for(self._fetch(), timeout=self.fetch_timeout_seconds)
                keys = parse_jwks(document)
            except (aiohttp.ClientError, TimeoutError, ValueError) as error:
                # Keep serving with the keys we have; the next unknown kid tries again.
                log.warning("JWKS refresh failed", url=self.url, error=f"{type(error).__name__}: {error}")
                self._last_fetch_failed = True
                return
            self._last_fetch_failed = False
            gone = set(self._keys) - set(keys)
            self._keys = keys
            self._fetched_at = time.monotonic()
            dropped = self._cache.drop_kids(gone)
            if gone:
                log.warning("signing keys left the JWKS", kids=sorted(gone), cached_tokens_dropped=dropped)
            log.info("JWKS refreshed", url=self.url, kids=sorted(keys))
