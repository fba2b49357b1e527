"""A service's own access token (client credentials grant), cached until shortly before it expires."""

from __future__ import annotations

import asyncio
import base64
import time
from urllib.parse import quote

import aiohttp

from services.kit.logging import get_logger

log = get_logger("kit.security")


class TokenRequestFailed(Exception):
    """The token endpoint refused or could not be reached."""


class ClientCredentialsTokenSource:
    """Fetch and cache a client-credentials access token for calls to other services.

    ``await source.token()`` returns a cached token while it has more than
    ``refresh_margin_seconds`` left; concurrent callers share one fetch. Call
    :meth:`invalidate` when a service answered 401 so the next call fetches anew.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str,
        session: aiohttp.ClientSession,
        *,
        refresh_margin_seconds: float = 60.0,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._authorization = _basic_authorization(client_id, client_secret)
        self._session = session
        self._margin = refresh_margin_seconds
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._token: str | None = None
        self._valid_until = 0.0
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        if self._token is not None and time.monotonic() < self._valid_until:
            return self._token
        async with self._lock:
            if self._token is None or time.monotonic() >= self._valid_until:
                self._token, self._valid_until = await self._fetch()
            return self._token

    async def authorization_header(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {await self.token()}"}

    def invalidate(self) -> None:
        self._token = None
        self._valid_until = 0.0

    async def _fetch(self) -> tuple[str, float]:
        started = time.monotonic()
        form = {"grant_type": "client_credentials", "scope": self.scope}
        try:
            async with self._session.post(
                self.token_url,
                data=form,
                headers={"Accept": "application/json", "Authorization": self._authorization},
                timeout=self._timeout,
            ) as response:
                body = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise TokenRequestFailed(f"token endpoint unreachable: {type(error).__name__}") from error
        if status != 200 or not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
            error_code = body.get("error") if isinstance(body, dict) else None
            raise TokenRequestFailed(f"token endpoint answered {status} ({error_code or 'no token'})")
        expires_in = float(body.get("expires_in", 300))
        valid_for = max(0.0, expires_in - self._margin)
        log.info("service token fetched", client_id=self.client_id, expires_in=expires_in)
        return body["access_token"], started + valid_for


def _basic_authorization(client_id: str, client_secret: str) -> str:
    # RFC 6749 §2.3.1: id and secret are form-urlencoded before the Basic encoding.
    pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()
