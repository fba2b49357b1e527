"""What the login form's signed cookies share (CSRF token, device cookie): their MAC and their attributes.

A value is signed with HMAC-SHA256 over its ``.``-joined parts, written base64url
without padding. The cookies are ``HttpOnly``, ``SameSite=Strict``, scoped to one path,
and ``Secure`` when users reach the suite over https.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from quart import Response


def mac(key: bytes, *parts: object) -> str:
    """The base64url (unpadded) HMAC-SHA256 of ``parts`` joined by ``.``."""
    message = ".".join(str(part) for part in parts)
    digest = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def set_strict_cookie(response: Response, name: str, value: str, *, max_age: int, path: str, secure: bool) -> None:
    """Set an ``HttpOnly``, ``SameSite=Strict`` cookie on ``response``."""
    response.set_cookie(name, value, max_age=max_age, path=path, secure=secure, httponly=True, samesite="Strict")
