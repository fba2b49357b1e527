"""The authorization endpoint: a server-rendered sign-in form, then a redirect with code and state.

GET validates the authorization request (client, exact redirect_uri, PKCE S256)
and shows the form. POST validates it again, then the CSRF token, then the
brute-force limits of the attempt's source (services/auth/throttle.py), then the
credentials; on success authlib issues the code and the browser gets a fresh device
cookie (services/auth/devices.py), which keeps it out of the account's lockout next time.
A request whose client or redirect_uri is not valid gets an error page: it is
never redirected anywhere.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from authlib.oauth2 import OAuth2Error
from quart import Blueprint, Response, request
from quart_schema import hide

from services.auth.csrf import COOKIE_NAME, COOKIE_PATH
from services.auth.devices import COOKIE_NAME as DEVICE_COOKIE
from services.auth.login_page import error_page, login_page
from services.auth.oauth.bridge import OAuthResponse, RequestSnapshot, snapshot, to_quart
from services.auth.oauth.models import User
from services.auth.passwords import HashingBusy
from services.auth.runtime import AuthRuntime, runtime
from services.auth.schemas import MAX_PASSWORD_LENGTH, has_control_characters, normalize_email
from services.auth.store import users
from services.kit.client_address import client_address, throttle_key
from services.kit.logging import get_logger

bp = Blueprint("authorize", __name__)
log = get_logger("auth.authorize")

INVALID_CREDENTIALS = "Invalid email or password."
TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Please wait a while and try again."
FORM_EXPIRED = "The sign-in form expired. Please try again."
LOGIN_FIELDS = frozenset({"email", "password"})  # the form's own fields, checked by the sign-in itself
BUSY = "Sign-in is busy right now. Please try again in a moment."


@bp.get("/auth/authorize")
@hide
async def authorize_form() -> Response:
    """Show the sign-in form for a valid authorization request."""
    rt = runtime()
    snap = await snapshot(rt.settings.issuer)
    grant = await _validate(rt, snap)
    if isinstance(grant, Response):
        return grant
    return _form(rt, snap, grant, rt.csrf.issue(), new_cookie=True)


@bp.post("/auth/authorize")
@hide
async def authorize_submit() -> Response:
    """Check the credentials; on success redirect to the client with ``code`` and ``state``."""
    rt = runtime()
    snap = await snapshot(rt.settings.issuer)
    grant = await _validate(rt, snap)
    if isinstance(grant, Response):
        return grant
    csrf_token = snap.form.get("csrf_token", "")
    if not rt.csrf.valid(request.cookies.get(COOKIE_NAME), csrf_token):
        return _form(rt, snap, grant, rt.csrf.issue(), new_cookie=True, error=FORM_EXPIRED, status=400)

    try:
        outcome = await _sign_in(rt, snap.form.get("email", ""), snap.form.get("password", ""))
    except HashingBusy as busy:
        page = _form(rt, snap, grant, csrf_token, error=BUSY, status=503)
        page.headers["Retry-After"] = str(busy.retry_after)
        return page
    if outcome.retry_after is not None:
        page = _form(rt, snap, grant, csrf_token, error=TOO_MANY_ATTEMPTS, status=429)
        page.headers["Retry-After"] = str(outcome.retry_after)
        return page
    if outcome.user is None:
        return _form(rt, snap, grant, csrf_token, error=INVALID_CREDENTIALS, status=400)

    result: OAuthResponse = await rt.bridge.run(
        rt.server.create_authorization_response, grant.request, outcome.user, grant
    )
    response = to_quart(result)
    response.headers["Cache-Control"] = "no-store"
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH)
    rt.devices.set_cookie(response, outcome.device_cookie, secure=rt.settings.issuer.startswith("https://"))
    return response


async def _validate(rt: AuthRuntime, snap: RequestSnapshot) -> Any:
    """authlib's grant for a valid request; otherwise the response to send (error page or redirect)."""
    oauth_params = (value for name, value in snap.params.items(multi=True) if name not in LOGIN_FIELDS)
    if any(has_control_characters(value) for value in oauth_params):
        # Refused before authlib (and the database) see it; no redirect for a malformed request.
        return error_page("invalid_request: a parameter contains a control character")
    try:
        return await rt.bridge.run(rt.server.get_consent_grant, snap)
    except OAuth2Error as error:
        if error.redirect_uri:  # set only once the client and its exact redirect_uri were verified
            status, _, headers = error()
            return to_quart(OAuthResponse(status, "", list(headers)))
        return error_page(error.description or error.error or "invalid authorization request")


@dataclass(frozen=True)
class SignIn:
    """The outcome of a sign-in attempt: the user (and the renewed device cookie), or why not."""

    user: User | None = None
    retry_after: int | None = None  # over a limit
    device_cookie: str = ""


async def _sign_in(rt: AuthRuntime, email_field: str, password: str) -> SignIn:
    """Check the limits of the attempt's source, then the password.

    Unknown accounts cost one (dummy) argon2 check and count against the limits exactly like
    existing ones, so neither the answer nor its timing tells whether an account exists.
    """
    email = normalize_email(email_field)[:320]
    peer, forwarded_for = request.remote_addr, request.headers.getlist("X-Forwarded-For")
    address = client_address(peer, forwarded_for, rt.trusted_proxies)
    cookie = request.cookies.get(DEVICE_COOKIE)
    async with rt.db.transaction() as conn:
        # An email with a control character (NUL, ...) names no account: no lookup, same answer.
        user = None if has_control_characters(email) else await users.find_user_by_email(conn, email)
        attempt = await rt.throttle.attempt(conn, email, throttle_key(address), user.id if user else None, cookie)
    if attempt.retry_after is not None:
        log.warning(
            "sign-in refused: too many attempts", address=address, source=attempt.source, retry=attempt.retry_after
        )
        return SignIn(retry_after=attempt.retry_after)
    # A password longer than any we accept cannot match: check it against the dummy hash instead.
    candidate = user if user is not None and len(password) <= MAX_PASSWORD_LENGTH else None
    if not await rt.passwords.verify(candidate.password_hash if candidate else None, password[:MAX_PASSWORD_LENGTH]):
        log.info("sign-in failed", address=address, source=attempt.source)
        return SignIn()
    assert candidate is not None
    user = candidate
    rehashed = None
    if rt.passwords.needs_rehash(user.password_hash):
        with contextlib.suppress(HashingBusy):  # the upgrade can wait for a quieter sign-in
            rehashed = await rt.passwords.rehash(password)
    async with rt.db.transaction() as conn:
        await rt.throttle.succeeded(conn, attempt, user.id)
        if rehashed is not None:
            await users.update_password_hash(conn, user.id, rehashed)
    log.info("signed in", user_id=str(user.id), address=address, source=attempt.source)
    return SignIn(user, device_cookie=rt.devices.renewed(cookie, user.id))


def _form(
    rt: AuthRuntime,
    snap: RequestSnapshot,
    grant: Any,
    csrf_token: str,
    *,
    new_cookie: bool = False,
    error: str | None = None,
    status: int = 200,
) -> Response:
    page = login_page(snap.params, grant.request.client.name, csrf_token, error=error, status=status)
    if new_cookie:
        # Secure when users reach us over https: the public URL (PUBLIC_URL), not the internal AUTH_URL.
        rt.csrf.set_cookie(page, csrf_token, secure=rt.settings.issuer.startswith("https://"))
    return page
