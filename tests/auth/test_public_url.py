"""PUBLIC_URL: the issuer the outside sees, apart from AUTH_URL, where the suite reaches auth.

Tokens carry it in ``iss``, the RFC 8414 metadata names it and its endpoints, and every
verifier configured like the suite's services (same PUBLIC_URL, internal AUTH_URL) accepts
the tokens. The login form's CSRF cookie is ``Secure`` when PUBLIC_URL is https.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from quart import Blueprint, g

from services.kit.app import create_service_app
from services.kit.config import ServiceSettings
from services.kit.security import InvalidToken, TokenVerifier, install_auth, require_scope
from services.kit.security.verifier import unverified_header
from tests.auth.conftest import AuthService, start_auth
from tests.auth.flows import authorization

PUBLIC = "https://quartet.example.com"
LOCAL_PUBLIC = "http://localhost:18080"


@pytest.fixture(scope="module")
async def public_auth(auth_db: tuple[str, str], log_dir: Path) -> AsyncIterator[AuthService]:
    async for service in start_auth(auth_db, log_dir, PUBLIC_URL=PUBLIC):
        yield service


@pytest.fixture(scope="module")
async def local_public_auth(auth_db: tuple[str, str], log_dir: Path) -> AsyncIterator[AuthService]:
    async for service in start_auth(auth_db, log_dir, PUBLIC_URL=LOCAL_PUBLIC):
        yield service


async def test_metadata_names_the_public_issuer_and_endpoints_only(public_auth: AuthService) -> None:
    async with public_auth.flows() as flows:
        metadata = (await flows.http.get("/.well-known/oauth-authorization-server")).json()
    assert metadata["issuer"] == PUBLIC
    urls = {k: v for k, v in metadata.items() if k.endswith(("_endpoint", "_uri", "documentation"))}
    assert set(urls) >= {"authorization_endpoint", "token_endpoint", "jwks_uri", "introspection_endpoint"}
    for name, url in urls.items():
        assert url.startswith(PUBLIC + "/"), name
    assert "127.0.0.1" not in str(metadata)  # the internal address never leaks


async def test_tokens_carry_the_public_issuer_and_verify_with_keys_from_the_internal_address(
    public_auth: AuthService,
) -> None:
    async with public_auth.flows() as flows:
        token = (await flows.client_credentials()).json()["access_token"]
        introspected = (await flows.introspect(token)).json()
    assert introspected["active"] is True and introspected["iss"] == PUBLIC
    async with aiohttp.ClientSession() as session:
        # How install_auth and the gateway build it: iss = PUBLIC_URL, JWKS from AUTH_URL.
        settings = ServiceSettings(auth_url=public_auth.url, public_url=PUBLIC)
        verifier = TokenVerifier(settings.issuer, "quartet", f"{public_auth.url}/.well-known/jwks.json", session)
        claims = await verifier.verify(token)
        assert claims.issuer == PUBLIC
        # A verifier still expecting the internal address as issuer refuses it: one value for all.
        internal = TokenVerifier(public_auth.url, "quartet", f"{public_auth.url}/.well-known/jwks.json", session)
        with pytest.raises(InvalidToken, match="iss"):
            await internal.verify(token)


async def test_the_csrf_cookie_is_secure_when_the_public_url_is_https(
    public_auth: AuthService, local_public_auth: AuthService
) -> None:
    for service, secure in ((public_auth, True), (local_public_auth, False)):
        async with service.flows() as flows:
            form = await flows.login_form(authorization())
        assert form.status_code == 200
        cookie = form.headers["set-cookie"]
        assert cookie.startswith("quartet_csrf=") and "HttpOnly" in cookie
        assert ("Secure" in cookie) is secure, (service.url, cookie)


def profile_app(auth: AuthService) -> Any:
    bp = Blueprint("profile", __name__)

    @bp.get("/whoami")
    @require_scope("profile")
    async def whoami() -> dict[str, str]:
        return {"sub": g.claims.sub, "iss": g.claims.issuer}

    settings = ServiceSettings(service_name="resource", auth_url=auth.url, public_url=LOCAL_PUBLIC)
    app = create_service_app(settings, blueprints=[bp], title="resource")
    install_auth(app)
    return app


async def test_a_user_signs_in_and_every_verifier_of_the_suite_accepts_the_token(
    local_public_auth: AuthService,
) -> None:
    async with local_public_auth.flows() as flows:
        user = await flows.register()
        tokens = await flows.sign_in(user["email"], "profile todos:read")
        access = tokens["access_token"]
        assert unverified_header(access)["typ"] == "at+jwt"
        # The auth service's own check (GET /auth/me) expects the same issuer.
        me = await flows.http.get("/auth/me", headers={"Authorization": f"Bearer {access}"})
        assert me.status_code == 200 and me.json()["id"] == user["id"]
    app = profile_app(local_public_auth)
    async with app.test_app() as test_app:
        resp = await test_app.test_client().get("/whoami", headers={"Authorization": f"Bearer {access}"})
        assert resp.status_code == 200
        assert await resp.get_json() == {"sub": user["id"], "iss": LOCAL_PUBLIC}
