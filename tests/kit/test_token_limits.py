"""What a verifier will not take even from a valid key: over-long tokens, stale cache entries,
tokens of a key that left the JWKS. Tokens are forged with the auth service's real key."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import pytest

from services.kit.config import ServiceSettings
from services.kit.security import TokenVerifier
from services.kit.security.claims import Claims
from services.kit.security.verifier import TokenCache
from tests.auth.conftest import AuthService, auth_db, auth_service  # noqa: F401 - fixtures
from tests.kit.test_security import (  # noqa: F401 - fixtures
    AUDIENCE,
    Forger,
    forger,
    rejected,
    resource_app,
    session,
    verifier,
)

TEN_YEARS = 10 * 365 * 24 * 3600


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


MakeVerifier = Callable[..., TokenVerifier]


@pytest.fixture
def verifier_of(auth_service: AuthService, session: aiohttp.ClientSession) -> MakeVerifier:  # noqa: F811
    """``verifier_of(**options)``: a TokenVerifier with ``options`` that fetches the auth service's JWKS."""

    def make(**options: Any) -> TokenVerifier:
        jwks_url = f"{auth_service.url}/.well-known/jwks.json"
        return TokenVerifier(auth_service.issuer, AUDIENCE, jwks_url, session, **options)

    return make


async def test_a_ten_year_token_signed_by_a_valid_key_is_refused(
    verifier: TokenVerifier,  # noqa: F811
    forger: Forger,  # noqa: F811
) -> None:
    now = int(time.time())
    assert await verifier.verify(forger.token(iat=now, exp=now + 3600))  # the default cap, exactly
    await rejected(verifier, forger.token(iat=now, exp=now + TEN_YEARS), "lifetime is longer")
    await rejected(verifier, forger.token(iat=now, exp=now + 3601), "lifetime is longer")
    # Backdating iat does not help: the lifetime counts from iat.
    await rejected(verifier, forger.token(iat=now - TEN_YEARS, exp=now + 60), "lifetime is longer")
    # The refusal is remembered by nobody: the cache holds only accepted tokens.
    assert len(verifier.cache) == 1


async def test_the_lifetime_cap_is_a_setting_of_every_service(forger: Forger) -> None:  # noqa: F811
    settings = ServiceSettings(service_name="resource", auth_url=forger.issuer)
    assert settings.token_max_lifetime_seconds == 3600
    app = resource_app(forger.issuer)
    now = int(time.time())
    async with app.test_app() as test_app:
        client = test_app.test_client()
        ok = await client.get("/private", headers={"Authorization": f"Bearer {forger.token(exp=now + 900)}"})
        assert ok.status_code == 200
        long = forger.token(exp=now + TEN_YEARS)
        refused = await client.get("/private", headers={"Authorization": f"Bearer {long}"})
        assert refused.status_code == 401
        assert "lifetime" in (await refused.get_json())["detail"]


async def test_a_stricter_cap_refuses_an_ordinary_access_token(
    verifier_of: MakeVerifier,
    forger: Forger,  # noqa: F811
) -> None:
    now = int(time.time())
    strict = verifier_of(max_lifetime_seconds=600)
    await rejected(strict, forger.token(iat=now, exp=now + 900), "600 s at most")


async def test_a_cached_token_is_trusted_only_for_the_cache_time(
    verifier_of: MakeVerifier,
    forger: Forger,  # noqa: F811
) -> None:
    clock = Clock()
    now = int(clock.now)
    token = forger.token(iat=now, exp=now + 900)
    caching = verifier_of(cache_seconds=60, clock=clock)
    claims = await caching.verify(token)
    clock.now += 59
    assert caching.cache.get(token) is claims
    assert await caching.verify(token) is claims  # served from the cache, not checked again
    clock.now += 2  # 61 s after it was cached, 14 minutes before it expires
    assert caching.cache.get(token) is None
    again = await caching.verify(token)  # checked again (signature, key, claims), cached anew
    assert again == claims and again is not claims


def test_cache_entries_end_at_the_cap_or_the_expiry_whichever_comes_first() -> None:
    clock = Clock()
    cache = TokenCache(size=10, clock=clock, ttl_seconds=60)

    def claims(exp: float) -> Claims:
        return Claims("sub", "client", frozenset(), "jti", 0, int(exp), "iss", (AUDIENCE,), {})

    cache.put("long", claims(clock.now + TEN_YEARS), kid="k1")
    cache.put("short", claims(clock.now + 10), kid="k2")
    clock.now += 10
    assert cache.get("short") is None and cache.get("long") is not None
    clock.now += 50
    assert cache.get("long") is None
    # No cache at all when the cap is 0.
    off = TokenCache(size=10, clock=clock, ttl_seconds=0)
    off.put("t", claims(clock.now + 100))
    assert off.get("t") is None


async def test_a_key_leaving_the_jwks_drops_its_cached_tokens(
    auth_service: AuthService,  # noqa: F811
    forger: Forger,  # noqa: F811
    session: aiohttp.ClientSession,  # noqa: F811
) -> None:
    published: dict[str, Any] = {}

    async def fetch() -> Mapping[str, Any]:
        if "document" in published:
            return dict(published["document"])
        async with session.get(f"{auth_service.url}/.well-known/jwks.json") as resp:
            return dict(await resp.json())

    refreshing = TokenVerifier(auth_service.issuer, AUDIENCE, "unused", fetch_jwks=fetch, min_refresh_seconds=0)
    tokens = [forger.token(sub=str(uuid.uuid4())) for _ in range(3)]
    for token in tokens:
        await refreshing.verify(token)
    assert len(refreshing.cache) == 3

    published["document"] = {"keys": []}  # the issuer revoked the key
    await refreshing.refresh(force=True)
    assert len(refreshing.cache) == 0
    for token in tokens:
        await rejected(refreshing, token, "unknown key")

    del published["document"]  # a refresh that still lists the key drops nothing
    await refreshing.refresh(force=True)
    await refreshing.verify(tokens[0])
    await refreshing.refresh(force=True)
    assert refreshing.cache.get(tokens[0]) is not None


@pytest.mark.parametrize("name", ["token_max_lifetime_seconds", "token_cache_seconds", "jwks_refresh_seconds"])
def test_the_limits_are_bounded_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv(name.upper(), "999999")
    with pytest.raises(ValidationError, match=name):
        ServiceSettings()
