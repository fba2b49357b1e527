"""The server-rendered login page (no JavaScript) and the authorization error page."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from html import escape
from urllib.parse import urlencode, urlsplit

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

# Colours match the app (web/app.css): text 4.5:1 and more, the focus ring 3:1 and more on white and on #f4f5f7.
_STYLE = (
    "body{font-family:system-ui,sans-serif;background:#f4f5f7;color:#1d2330;margin:0;line-height:1.45}"
    "main{max-width:24rem;margin:8vh auto;background:#fff;padding:1.5rem 2rem 2rem;border-radius:.5rem;"
    "box-shadow:0 1px 4px #0002}"
    "@media (max-width:30rem){main{margin:0;border-radius:0;box-shadow:none;padding:1.25rem}}"
    "h1{font-size:1.4rem;margin:.25rem 0 .5rem}label{display:block;margin:1rem 0 .25rem;font-weight:600}"
    "input{width:100%;box-sizing:border-box;padding:.55rem .6rem;font-size:1rem;border:1px solid #767f8f;"
    "border-radius:.35rem}input[aria-invalid=true]{border-color:#a4262c}"
    "button{margin-top:1.5rem;width:100%;padding:.65rem;font-size:1rem;font-weight:600;color:#fff;"
    "background:#2450b8;border:1px solid #2450b8;border-radius:.35rem;cursor:pointer}"
    "button:hover{background:#1b3d8f}"
    ":focus-visible{outline:3px solid #1b3d8f;outline-offset:2px}"
    "a{color:#2450b8}.links{margin:1.25rem 0 0;display:flex;flex-wrap:wrap;justify-content:space-between;gap:.5rem}"
    ".hint{color:#5b6475;font-size:.9rem;margin:.25rem 0 0}"
    ".field-error{color:#a4262c;font-size:.9rem;margin:.25rem 0 0}"
    ".error{color:#a4262c;background:#fde8e8;padding:.5rem .75rem;border-radius:.25rem}"
)
_STYLE_HASH = base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()

FieldErrors = Mapping[str, str]


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


def _hidden(params: Mapping[str, str]) -> str:
    return "".join(
        f'<input type="hidden" name="{name}" value="{escape(params[name])}">'
        for name in AUTHORIZE_PARAMS
        if params.get(name)
    )


def _query(params: Mapping[str, str], **extra: str) -> str:
    """This authorization request again (to switch between sign-in and registration)."""
    carried = {name: params[name] for name in AUTHORIZE_PARAMS if params.get(name)}
    return "/auth/authorize?" + urlencode({**carried, **{k: v for k, v in extra.items() if v}})


def _field(
    name: str, label: str, kind: str, attrs: str, errors: FieldErrors, *, value: str = "", hint: str = ""
) -> str:
    described = " ".join(
        part for part, present in ((f"{name}-error", name in errors), (f"{name}-hint", bool(hint))) if present
    )
    aria = (' aria-invalid="true"' if name in errors else "") + (
        f' aria-describedby="{described}"' if described else ""
    )
    shown = f' value="{escape(value)}"' if value else ""
    return (
        f'<label for="{name}">{escape(label)}</label>'
        f'<input id="{name}" type="{kind}" name="{name}" {attrs}{shown}{aria}>'
        + (f'<p class="hint" id="{name}-hint">{escape(hint)}</p>' if hint else "")
        + (f'<p class="field-error" id="{name}-error">{escape(errors[name])}</p>' if name in errors else "")
    )


def _links(left: str, back: str | None, client_name: str) -> str:
    back_link = f'<a href="{escape(back)}">Back to {escape(client_name)}</a>' if back else ""
    return f'<p class="links">{left}{back_link}</p>'


def login_page(
    params: Mapping[str, str],
    client_name: str,
    csrf_token: str,
    *,
    back: str | None = None,
    email: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The sign-in form. It keeps the email (never the password); failures read the same for every account."""
    alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    focus_password = " autofocus" if email else ""
    body = (
        f"<h1>Sign in</h1><p>to continue to <strong>{escape(client_name)}</strong></p>{alert}"
        '<form method="post" action="/auth/authorize">'
        + _field(
            "email",
            "Email",
            "email",
            'autocomplete="username" required maxlength="320"' + ("" if email else " autofocus"),
            {},
            value=email,
        )
        + _field(
            "password",
            "Password",
            "password",
            f'autocomplete="current-password" required maxlength="1024"{focus_password}',
            {},
        )
        + f'{_hidden(params)}<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
        '<button type="submit">Sign in</button></form>'
        + _links(
            f'<a href="{escape(_query(params, prompt="create"))}">Create an account</a>',
            back,
            client_name,
        )
    )
    return Response(_document("Sign in", body), status=status, headers=_headers(params.get("redirect_uri")))


def register_page(
    params: Mapping[str, str],
    client_name: str,
    csrf_token: str,
    *,
    back: str | None = None,
    values: Mapping[str, str] | None = None,
    errors: FieldErrors | None = None,
    taken: bool = False,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The registration form of this authorization request: on success the user is signed in and sent on."""
    values, errors = values or {}, errors or {}
    email = values.get("email", "")
    if taken:
        sign_in = escape(_query(params, login_hint=email))
        alert = (
            '<p class="error" role="alert">An account with this email already exists. '
            f'<a href="{sign_in}" id="sign-in-instead">Sign in instead</a>.</p>'
        )
    elif errors:
        alert = f'<p class="error" role="alert">{escape(error or "Please correct the fields marked below.")}</p>'
    else:
        alert = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    body = (
        f"<h1>Create an account</h1><p>for <strong>{escape(client_name)}</strong></p>{alert}"
        '<form method="post" action="/auth/authorize" novalidate>'
        + _field(
            "email", "Email", "email", 'autocomplete="username" required maxlength="320" autofocus', errors, value=email
        )
        + _field(
            "name",
            "Name (optional)",
            "text",
            'autocomplete="name" maxlength="200"',
            errors,
            value=values.get("name", ""),
        )
        + _field(
            "password",
            "Password",
            "password",
            'autocomplete="new-password" required minlength="8" maxlength="1024"',
            errors,
            hint="At least 8 characters.",
        )
        + f'{_hidden(params)}<input type="hidden" name="intent" value="register">'
        f'<input type="hidden" name="csrf_token" value="{escape(csrf_token)}">'
        '<button type="submit">Create account</button></form>'
        + _links(
            f'<span>Already registered? <a href="{escape(_query(params, login_hint=email))}">Sign in</a></span>',
            back,
            client_name,
        )
    )
    return Response(_document("Create an account", body), status=status, headers=_headers(params.get("redirect_uri")))


def error_page(message: str, status: int = 400) -> Response:
    """A failed authorization request that must not be sent back to an unverified redirect_uri."""
    body = f'<h1>Sign-in request refused</h1><p class="error" role="alert">{escape(message)}</p>'
    return Response(_document("Sign-in request refused", body), status=status, headers=_headers(None))
