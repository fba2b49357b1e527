"""Client-side OAuth flows against a running auth service, for tests (and other services' tests).

``AuthFlows`` drives the real endpoints: register, the login form (with its CSRF
cookie and hidden fields), the code exchange with PKCE, refresh, client credentials,
revocation and introspection.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

WEB_CLIENT = "quartet-web"
WEB_REDIRECT = "http://localhost:8080/app/callback"
WORKER_CLIENT = "reports-worker"
WORKER_SECRET = "test-worker-secret"
PASSWORD = "correct horse battery"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def hidden_fields(html: str) -> dict[str, str]:
    import html as html_lib

    return {
        name: html_lib.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', html)
    }


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Authorization:
    """An authorization request of the SPA: its parameters and the PKCE verifier."""

    verifier: str
    params: dict[str, str] = field(default_factory=dict)


def authorization(scope: str = "profile todos:read", **overrides: str | None) -> Authorization:
    verifier, challenge = pkce_pair()
    params: dict[str, Any] = {
        "response_type": "code",
        "client_id": WEB_CLIENT,
        "redirect_uri": WEB_REDIRECT,
        "scope": scope,
        "state": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return Authorization(verifier, {k: v for k, v in params.items() if v is not None})


class AuthFlows:
    def __init__(
        self, base_url: str, *, address: str | None = None, source: str | None = None, app: Any = None
    ) -> None:
        """``app``: an in-process auth app (started) to send the requests to instead of ``base_url``.

        ``address``: the client address, sent as X-Forwarded-For (the service trusts the
        header from its proxies, as it does from the gateway). ``source``: connect from this
        local address (127.0.0.2, ...) instead of 127.0.0.1; with no ``address`` no
        X-Forwarded-For is sent and the peer the server sees is the client.
        """
        self.base_url = base_url
        headers = {}
        if source is not None and address is None:
            self.address = source
        else:
            # Each test signs in "from" its own address, so per-address limits never mix tests.
            octets = (secrets.randbelow(250), secrets.randbelow(250), secrets.randbelow(250) + 1)
            self.address = address or "10.{}.{}.{}".format(*octets)
            headers["X-Forwarded-For"] = self.address
        transport: httpx.AsyncBaseTransport | None = None
        if app is not None:
            transport = httpx.ASGITransport(app=app)
        elif source is not None:
            transport = httpx.AsyncHTTPTransport(local_address=source)
        self.http = httpx.AsyncClient(base_url=base_url, timeout=20, headers=headers, transport=transport)

    async def __aenter__(self) -> AuthFlows:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def register(self, email: str | None = None, password: str = PASSWORD) -> dict[str, Any]:
        email = email or f"user-{secrets.token_hex(6)}@example.com"
        resp = await self.http.post("/auth/register", json={"email": email, "password": password, "name": "Test"})
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    async def login_form(self, auth: Authorization) -> httpx.Response:
        return await self.http.get("/auth/authorize", params=auth.params)

    async def submit_login(self, form_html: str, email: str, password: str) -> httpx.Response:
        fields = hidden_fields(form_html) | {"email": email, "password": password}
        return await self.http.post("/auth/authorize", data=fields)

    async def authorize(self, auth: Authorization, email: str, password: str = PASSWORD) -> dict[str, str]:
        """Sign in through the form; returns the query of the redirect (code, state)."""
        form = await self.login_form(auth)
        assert form.status_code == 200, form.text
        resp = await self.submit_login(form.text, email, password)
        assert resp.status_code == 302, resp.text
        location = resp.headers["location"]
        assert location.startswith(auth.params["redirect_uri"] + "?")
        return query_of(location)

    async def exchange(self, code: str, verifier: str | None, **extra: str) -> httpx.Response:
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": WEB_REDIRECT, "client_id": WEB_CLIENT}
        if verifier is not None:
            form["code_verifier"] = verifier
        form.update(extra)
        return await self.http.post("/auth/token", data=form)

    async def sign_in(self, email: str, scope: str = "profile todos:read", password: str = PASSWORD) -> dict[str, Any]:
        """The whole SPA flow: form, code, tokens. Returns the token response."""
        auth = authorization(scope)
        redirect = await self.authorize(auth, email, password)
        resp = await self.exchange(redirect["code"], auth.verifier)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())

    async def refresh(self, refresh_token: str, **extra: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": WEB_CLIENT, **extra}
        return await self.http.post("/auth/token", data=form)

    async def client_credentials(
        self, scope: str | None = None, secret: str = WORKER_SECRET, client_id: str = WORKER_CLIENT
    ) -> httpx.Response:
        form = {"grant_type": "client_credentials"} | ({"scope": scope} if scope else {})
        return await self.http.post("/auth/token", data=form, auth=(client_id, secret))

    async def introspect(
        self, token: str, *, auth: tuple[str, str] | None = (WORKER_CLIENT, WORKER_SECRET)
    ) -> httpx.Response:
        return await self.http.post("/auth/introspect", data={"token": token}, auth=auth or httpx.USE_CLIENT_DEFAULT)

    async def revoke(self, token: str, hint: str | None = None) -> httpx.Response:
        form = {"token": token, "client_id": WEB_CLIENT} | ({"token_type_hint": hint} if hint else {})
        return await self.http.post("/auth/revoke", data=form)
