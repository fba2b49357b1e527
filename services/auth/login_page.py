"""The server-rendered login page (no JavaScript) and the authorization error page."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from html import escape
from urllib.parse import urlsplit

from quart import Response

# The OAuth parameters the form carries from the GET to the POST, as hidden fields.
AUTHORIZE_PARAMS = (
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
)

_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}"
    "main{max-width:22rem;margin:10vh auto;background:#fff;padding:2rem;border-radius:.5rem;"
    "box-shadow:0 1px 4px #0002}"
    "h1{font-size:1.4rem;margin-top:0}label{display:block;margin:1rem 0 .25rem}"
    "input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}"
    "button{margin-top:1.5rem;width:100%;padding:.6rem;font-size:1rem}"
    ".error{color:#a00;background:#fee;padding:.5rem;border-radius:.25rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()


def _document(title: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} · Quartet</title><style>{_STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>"
    )


def _headers(form_target: str | None) -> dict[str, str]:
    # form-action must allow the client's origin too: browsers check the redirect after the POST.
    form_action = "'none'"
    if form_target:
        parts = urlsplit(form_target)
        form_action = f"'self' {parts.scheme}://{parts.netloc}"
    return {
        "Content-Type": "text/html; charset=utf-8",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; frame-ancestors 'none'; "
            f"base-uri 'none'; form-action {form_action}"
        ),
    }


def login_page(
    params: Mapping[str, str], client_name: str, csrf_token: str, *, error: str | None = None, status: int = 200
) -> Response:
    """The sign-in form. It never echoes what was typed, so every failure looks the same."""
    hidden = "".join(
        f'<input type="hidden" name="{name}" value="{escape(params[name])}">'
        for name in AUTHORIZE_PARAMS
        if params.get(name)
    )
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"<h1>Sign in</h1><p>to continue to <strong>{escape(client_name)}</strong></p>{alert}"
        '<form method="post" action="/auth/authorize">'
        '<label for="email">Email</label>'
        '<input id="email" type="email" name="email" autocomplete="username" required maxlength="320" autofocus>'
        '<label for="password">Password</label>'
        '<input id="password" type="password" name="password" autocomplete="current-password" required'
        ' maxlength="1024">'
        f'{hidden}<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
        '<button type="submit">Sign in</button></form>'
    )
    return Response(_document("Sign in", body), status=status, headers=_headers(params.get("redirect_uri")))


def error_page(message: str, status: int = 400) -> Response:
    """A failed authorization request that must not be sent back to an unverified redirect_uri."""
    body = f'<h1>Sign-in request refused</h1><p class="error" role="alert">{escape(message)}</p>'
    return Response(_document("Sign-in request refused", body), status=status, headers=_headers(None))
