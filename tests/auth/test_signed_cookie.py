"""The login form's cookie helpers: the MAC the CSRF and device tokens carry, and the cookie attributes."""

from __future__ import annotations

import base64
import hashlib
import hmac
from uuid import UUID

from quart import Response

from services.auth.signed_cookie import mac, set_strict_cookie

KEY = b"k" * 32


def test_mac_is_unpadded_base64url_hmac_sha256_of_the_dot_joined_parts() -> None:
    user_id = UUID("12345678-1234-5678-1234-567812345678")
    digest = hmac.new(KEY, f"{user_id}.nonce.1700000000".encode(), hashlib.sha256).digest()
    assert mac(KEY, user_id, "nonce", "1700000000") == base64.urlsafe_b64encode(digest).decode().rstrip("=")
    assert "=" not in mac(KEY, "a")


def test_strict_cookie_attributes() -> None:
    response = Response("")
    set_strict_cookie(response, "quartet_csrf", "v", max_age=1800, path="/auth/authorize", secure=True)
    cookie = response.headers["Set-Cookie"]
    expected = ("quartet_csrf=v", "Max-Age=1800", "Path=/auth/authorize", "Secure", "HttpOnly", "SameSite=Strict")
    assert all(attribute in cookie for attribute in expected), cookie
    plain = Response("")
    set_strict_cookie(plain, "quartet_device", "v", max_age=60, path="/auth/authorize", secure=False)
    assert "Secure" not in plain.headers["Set-Cookie"]
