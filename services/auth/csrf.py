"""CSRF protection of the login form: a signed double-submit token.

The token (random nonce, expiry, HMAC over both) goes in a ``SameSite=Strict``,
``HttpOnly`` cookie and in a hidden form field. A POST is accepted only when both
are present, equal, correctly signed and unexpired: another site can neither read
the cookie nor forge a token. The key is a secret kept in the auth database, so
every instance accepts every instance's tokens.
"""

from __future__ import annotations

import hmac
import secrets
import time

from quart import Response

from services.auth.signed_cookie import mac, set_strict_cookie

COOKIE_NAME = "quartet_csrf"
COOKIE_PATH = "/auth/authorize"


class CsrfTokens:
    def __init__(self, key: bytes, ttl_seconds: int = 1800) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds

    def issue(self) -> str:
        nonce = secrets.token_urlsafe(24)
        expires = str(int(time.time()) + self.ttl_seconds)
        return f"{nonce}.{expires}.{self._mac(nonce, expires)}"

    def valid(self, cookie: str | None, field: str | None) -> bool:
        if not cookie or not field or len(field) > 200 or not hmac.compare_digest(cookie, field):
            return False
        parts = field.split(".")
        if len(parts) != 3:
            return False
        nonce, expires, mac = parts
        if not hmac.compare_digest(mac, self._mac(nonce, expires)):
            return False
        return expires.isdigit() and int(expires) > time.time()

    def set_cookie(self, response: Response, token: str, *, secure: bool) -> None:
        set_strict_cookie(response, COOKIE_NAME, token, max_age=self.ttl_seconds, path=COOKIE_PATH, secure=secure)

    def _mac(self, nonce: str, expires: str) -> str:
        return mac(self._key, nonce, expires)
