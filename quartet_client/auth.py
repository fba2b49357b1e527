"""Sign in to the suite as the SPA does: the login form, the code flow with PKCE, refresh.

``AuthClient`` drives the auth service's real endpoints (directly or through the
gateway, same paths): register, the login form (its CSRF cookie and hidden fields),
the code exchange with PKCE (S256), refresh, client credentials, revocation and
introspection. The low-level calls return the ``httpx.Response`` so a caller can look
at refusals; :meth:`AuthClient.sign_in` and :meth:`AuthClient.register` raise
:class:`SignInFailed` on any answer but the expected one.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from dataclasses import dataclass, field
from typing import Any, NotRequired, Self, TypedDict
from urllib.parse import parse_qs, urlsplit

import httpx

from quartet_client.errors import SignInFailed

WEB_CLIENT = "quartet-web"
WEB_REDIRECT = "http://localhost:8080/app/callback"
WORKER_CLIENT = "reports-worker"
DEFAULT_SCOPE = "profile todos:read"


class Tokens(TypedDict):
    """The token endpoint's answer (RFC 6749 section 5.1)."""

    token_type: str
    access_token: str
    expires_in: int
    scope: str
    refresh_token: NotRequired[str]


class UserProfile(TypedDict):
    id: str
    email: str
    name: str | None
    created_at: str


def pkce_pair() -> tuple[str, str]:
    """A PKCE verifier and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the login form (CSRF token, the authorization request)."""
    return {
        name: html.unescape(value)
        for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    }


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


@dataclass
class Authorization:
    """An authorization request of the SPA: its parameters and the PKCE verifier."""

    verifier: str
    params: dict[str, str] = field(default_factory=dict)


def authorization(scope: str = DEFAULT_SCOPE, /, **overrides: str | None) -> Authorization:
    """The SPA's authorization request for ``scope``; an override of ``None`` leaves that parameter out."""
    verifier, challenge = pkce_pair()
    params: dict[str, str | None] = {
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


class AuthClient:
    """The client side of the suite's OAuth flows, over one ``httpx.AsyncClient`` (``self.http``)."""

    def __init__(
        self,
        base_url: str,
        *,
        address: str | None = None,
        source: str | None = None,
        app: Any = None,
        timeout: float = 20,
        redirect_uri: str = WEB_REDIRECT,
    ) -> None:
        """``app``: an in-process ASGI app (started) to send the requests to instead of ``base_url``.

        ``address``: the client address, sent as X-Forwarded-For (the service trusts the
        header from its proxies, as it does from the gateway). ``source``: connect from this
        local address (127.0.0.2, ...) instead of 127.0.0.1; with no ``address`` no
        X-Forwarded-For is sent and the peer the server sees is the client. With neither,
        the client claims an address of its own in 10.0.0.0/8, so per-address limits of
        one caller never mix with another's.
        """
        self.base_url = base_url
        self.redirect_uri = redirect_uri  # the SPA's callback of this suite (another with QUARTET_PORT_OFFSET)
        headers = {}
        if source is not None and address is None:
            self.address = source
        else:
            octets = (secrets.randbelow(250), secrets.randbelow(250), secrets.randbelow(250) + 1)
            self.address = address or "10.{}.{}.{}".format(*octets)
            headers["X-Forwarded-For"] = self.address
        transport: httpx.AsyncBaseTransport | None = None
        if app is not None:
            transport = httpx.ASGITransport(app=app)
        elif source is not None:
            transport = httpx.AsyncHTTPTransport(local_address=source)
        self.http = httpx.AsyncClient(base_url=base_url, timeout=timeout, headers=headers, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()

    async def register(self, email: str, password: str, name: str | None = None) -> UserProfile:
        """Create the account; :class:`SignInFailed` on anything but 201 (409 when it exists)."""
        body = {"email": email, "password": password} | ({"name": name} if name is not None else {})
        resp = await self.http.post("/auth/register", json=body)
        if resp.status_code != 201:
            raise SignInFailed("register", resp)
        profile: UserProfile = resp.json()
        return profile

    async def login_form(self, auth: Authorization) -> httpx.Response:
        return await self.http.get("/auth/authorize", params=auth.params)

    async def submit_login(self, form_html: str, email: str, password: str) -> httpx.Response:
        fields = hidden_fields(form_html) | {"email": email, "password": password}
        return await self.http.post("/auth/authorize", data=fields)

    async def authorize(self, auth: Authorization, email: str, password: str) -> dict[str, str]:
        """Sign in through the form; returns the query of the redirect (code, state)."""
        form = await self.login_form(auth)
        if form.status_code != 200:
            raise SignInFailed("login form", form)
        resp = await self.submit_login(form.text, email, password)
        location = resp.headers.get("location", "")
        if resp.status_code != 302 or not location.startswith(auth.params["redirect_uri"] + "?"):
            raise SignInFailed("login", resp)
        return query_of(location)

    async def exchange(self, code: str, verifier: str | None, **extra: str) -> httpx.Response:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": WEB_CLIENT,
        }
        if verifier is not None:
            form["code_verifier"] = verifier
        form.update(extra)
        return await self.http.post("/auth/token", data=form)

    async def sign_in(self, email: str, scope: str, password: str) -> Tokens:
        """The whole SPA flow: form, code, tokens."""
        auth = authorization(scope, redirect_uri=self.redirect_uri)
        redirect = await self.authorize(auth, email, password)
        resp = await self.exchange(redirect["code"], auth.verifier)
        if resp.status_code != 200:
            raise SignInFailed("token", resp)
        tokens: Tokens = resp.json()
        return tokens

    async def refresh(self, refresh_token: str, **extra: str) -> httpx.Response:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": WEB_CLIENT, **extra}
        return await self.http.post("/auth/token", data=form)

    async def refreshed(self, refresh_token: str) -> Tokens:
        """New tokens for a refresh token (which is spent: use the new one next time)."""
        resp = await self.refresh(refresh_token)
        if resp.status_code != 200:
            raise SignInFailed("refresh", resp)
        tokens: Tokens = resp.json()
        return tokens

    async def client_credentials(
        self, scope: str | None = None, *, secret: str, client_id: str = WORKER_CLIENT
    ) -> httpx.Response:
        form = {"grant_type": "client_credentials"} | ({"scope": scope} if scope else {})
        return await self.http.post("/auth/token", data=form, auth=(client_id, secret))

    async def introspect(self, token: str, *, auth: tuple[str, str] | None) -> httpx.Response:
        return await self.http.post("/auth/introspect", data={"token": token}, auth=auth or httpx.USE_CLIENT_DEFAULT)

    async def revoke(self, token: str, hint: str | None = None) -> httpx.Response:
        form = {"token": token, "client_id": WEB_CLIENT} | ({"token_type_hint": hint} if hint else {})
        return await self.http.post("/auth/revoke", data=form)
