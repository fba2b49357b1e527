"""Device cookies: a browser that signed in to an account before is judged by its own budget.

OWASP's "device cookie" defence against targeted lockout: a successful sign-in sets a
signed cookie naming (account, random nonce, expiry). A later sign-in for that account
carrying a valid one counts its failures against that device only (``device:<nonce>``),
never against the account's budget for unknown sources, so failures from elsewhere
cannot refuse the device — and a stolen cookie still buys only one device's budget.

A token is ``nonce.expires.mac`` with the HMAC over user id, nonce and expiry: it names
no account (the typed email's user id is checked against the MAC) and is worthless for
any other account, or after the account is deleted and its email registered again. One
cookie holds the tokens of up to ``MAX_TOKENS`` accounts (a shared computer), newest first.
The key is a secret in the auth database, so every instance accepts every instance's tokens.
"""

from __future__ import annotations

import hmac
import secrets
import time
from uuid import UUID

from quart import Response

from services.auth.signed_cookie import mac, set_strict_cookie

COOKIE_NAME = "quartet_device"
COOKIE_PATH = "/auth/authorize"
MAX_TOKENS = 4
_SEPARATOR = "~"  # a cookie-octet that base64url and "." never use
_MAX_COOKIE_LENGTH = MAX_TOKENS * 100


class DeviceCookies:
    def __init__(self, key: bytes, ttl_seconds: int) -> None:
        self._key = key
        self.ttl_seconds = ttl_seconds

    def device_of(self, cookie: str | None, user_id: UUID) -> str | None:
        """The device nonce of the cookie's valid, unexpired token for ``user_id``, if any."""
        for token in _tokens(cookie):
            nonce, expires, mac = token.split(".")
            if hmac.compare_digest(mac, self._mac(user_id, nonce, expires)) and int(expires) > time.time():
                return nonce
        return None

    def renewed(self, cookie: str | None, user_id: UUID) -> str:
        """The cookie value after a successful sign-in: a fresh token for ``user_id`` first.

        The account's old token goes (a new nonce starts with a fresh budget); the other
        accounts' unexpired tokens stay, oldest dropped past MAX_TOKENS.
        """
        now = time.time()
        old = self.device_of(cookie, user_id)
        others = [t for t in _tokens(cookie) if t.split(".")[0] != old and int(t.split(".")[1]) > now]
        nonce = secrets.token_urlsafe(16)
        expires = str(int(now) + self.ttl_seconds)
        token = f"{nonce}.{expires}.{self._mac(user_id, nonce, expires)}"
        return _SEPARATOR.join([token, *others][:MAX_TOKENS])

    def set_cookie(self, response: Response, value: str, *, secure: bool) -> None:
        set_strict_cookie(response, COOKIE_NAME, value, max_age=self.ttl_seconds, path=COOKIE_PATH, secure=secure)

    def _mac(self, user_id: UUID, nonce: str, expires: str) -> str:
        return mac(self._key, user_id, nonce, expires)


def _tokens(cookie: str | None) -> list[str]:
    """The well-formed tokens of a cookie value (anything else in it is ignored)."""
    if not cookie or len(cookie) > _MAX_COOKIE_LENGTH:
        return []
    found = []
    for token in cookie.split(_SEPARATOR)[:MAX_TOKENS]:
        parts = token.split(".")
        if len(parts) == 3 and all(parts) and parts[1].isascii() and parts[1].isdigit() and len(parts[1]) <= 12:
            found.append(token)
    return found
