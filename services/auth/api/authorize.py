"""The authorization endpoint: a server-rendered sign-in form, then a redirect with code and state.

GET validates the authorization request (client, exact redirect_uri, PKCE S256)
and shows the form. POST validates it again, then the CSRF token, then signs in
(services/auth/accounts.py: the brute-force limits of the attempt's source, then the
credentials); on success authlib issues the code and the browser gets its renewed device
cookie, which keeps it out of the account's lockout next time.
A request whose client or redirect_uri is not valid gets an error page: it is
never redirected anywhere.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from authlib.oauth2 import OAuth2Error
from pydantic import ValidationError
from quart import Blueprint, Response, request
from quart_schema import hide

from services.auth import accounts
from services.auth.accounts import Refusal, SignIn
from services.auth.csrf import COOKIE_NAME, COOKIE_PATH
from services.auth.devices import COOKIE_NAME as DEVICE_COOKIE
from services.auth.login_page import error_page, login_page, register_page
from services.auth.oauth.bridge import OAuthResponse, RequestSnapshot, snapshot, to_quart
from services.auth.passwords import HashingBusy
from services.auth.runtime import AuthRuntime, runtime
from services.auth.schemas import RegisterRequest, has_control_characters
from services.auth.store import users
from services.kit.client_address import client_address
from services.kit.field_errors import field_errors

bp = Blueprint("authorize", __name__)

INVALID_CREDENTIALS = "Invalid email or password."
TOO_MANY_ATTEMPTS = "Too many sign-in attempts. Please wait a while and try again."
FORM_EXPIRED = "The sign-in form expired. Please try again."
# The forms' own fields (and the screen switches), checked by the sign-in or the registration itself.
LOGIN_FIELDS = frozenset({"email", "password", "name", "intent", "prompt", "login_hint"})
BUSY = "Sign-in is busy right now. Please try again in a moment."
REFUSALS = {
    Refusal.INVALID: (INVALID_CREDENTIALS, 400),
    Refusal.THROTTLED: (TOO_MANY_ATTEMPTS, 429),
    Refusal.BUSY: (BUSY, 503),
}


@bp.route("/auth/authorize", methods=["GET", "POST"])
@hide
async def authorize() -> Response:
    """GET: the sign-in form for a valid authorization request. POST: check the credentials;
    on success redirect to the client with ``code`` and ``state``."""
    rt = runtime()
    snap = await snapshot(rt.settings.issuer)
    grant = await _validate(rt, snap)
    if isinstance(grant, Response):
        return grant
    registering = snap.params.get("prompt") == "create" or snap.form.get("intent") == "register"
    if request.method == "POST":
        return await (_register(rt, snap, grant) if registering else _submit(rt, snap, grant))
    if registering:  # OpenID Connect's prompt=create: the registration form of this same request
        return _register_form(rt, snap, grant, rt.csrf.issue(), new_cookie=True)
    hint = snap.params.get("login_hint", "")
    return _form(rt, snap, grant, rt.csrf.issue(), new_cookie=True, email=hint if len(hint) <= 320 else "")


async def _submit(rt: AuthRuntime, snap: RequestSnapshot, grant: Any) -> Response:
    """The form came back: its CSRF token, then the sign-in (limits first, then the credentials)."""
    csrf_token = snap.form.get("csrf_token", "")
    email, password = snap.form.get("email", ""), snap.form.get("password", "")
    if not rt.csrf.valid(request.cookies.get(COOKIE_NAME), csrf_token):
        return _form(rt, snap, grant, rt.csrf.issue(), new_cookie=True, email=email, error=FORM_EXPIRED, status=400)

    address = client_address(request.remote_addr, request.headers.getlist("X-Forwarded-For"), rt.trusted_proxies)
    outcome = await accounts.sign_in(
        rt, email, password, address=address, device_cookie=request.cookies.get(DEVICE_COOKIE)
    )
    if outcome.user is None:
        return _refused(rt, snap, grant, csrf_token, outcome)
    return await _redirect_with_code(rt, grant, outcome)


def _refused(rt: AuthRuntime, snap: RequestSnapshot, grant: Any, csrf_token: str, outcome: SignIn) -> Response:
    """The form again, saying why (the same words for an unknown account and a wrong password)."""
    assert outcome.refused is not None
    message, status = REFUSALS[outcome.refused]
    page = _form(rt, snap, grant, csrf_token, email=snap.form.get("email", "")[:320], error=message, status=status)
    if outcome.retry_after is not None:
        page.headers["Retry-After"] = str(outcome.retry_after)
    return page


async def _register(rt: AuthRuntime, snap: RequestSnapshot, grant: Any) -> Response:
    """The registration form came back: CSRF token, the fields (in words), the account, then the code.

    The account is created exactly as ``POST /auth/register`` does (``accounts.register``), then
    this authorization request goes on as if the user had signed in: registering leaves you signed in.
    """
    csrf_token = snap.form.get("csrf_token", "")
    values = {name: snap.form.get(name, "") for name in ("email", "name")}
    if not rt.csrf.valid(request.cookies.get(COOKIE_NAME), csrf_token):
        return _register_form(rt, snap, grant, rt.csrf.issue(), new_cookie=True, values=values, error=FORM_EXPIRED)
    fields = {"email": values["email"], "password": snap.form.get("password", ""), "name": values["name"] or None}
    try:
        data = RegisterRequest.model_validate(fields)
    except ValidationError as invalid:
        errors = {e["field"]: e["msg"] for e in field_errors(invalid.errors(include_url=False, include_input=False))}
        return _register_form(rt, snap, grant, csrf_token, values=values, errors=errors, status=422)
    try:
        user = await accounts.register(rt, data.email, data.name, data.password)
    except HashingBusy:
        return _register_form(rt, snap, grant, csrf_token, values=values, error=BUSY, status=503)
    except users.EmailTaken:
        return _register_form(rt, snap, grant, csrf_token, values=values, taken=True, status=409)
    device = rt.devices.renewed(request.cookies.get(DEVICE_COOKIE), user.id)
    return await _redirect_with_code(rt, grant, SignIn(user, device_cookie=device))


async def _redirect_with_code(rt: AuthRuntime, grant: Any, outcome: SignIn) -> Response:
    """authlib issues the code; the login form's CSRF cookie goes, the renewed device cookie comes."""
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


def _back(grant: Any, snap: RequestSnapshot) -> str | None:
    """ "Back to the app": RFC 6749's access_denied to the verified redirect_uri, with the state."""
    redirect_uri = getattr(grant, "redirect_uri", None) or snap.params.get("redirect_uri")
    if not redirect_uri:
        return None
    params = {"error": "access_denied", "error_description": "Sign-in was cancelled."}
    if snap.params.get("state"):
        params["state"] = snap.params["state"]
    return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(params)}"


def _form(
    rt: AuthRuntime,
    snap: RequestSnapshot,
    grant: Any,
    csrf_token: str,
    *,
    new_cookie: bool = False,
    email: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    name = grant.request.client.name
    page = login_page(snap.params, name, csrf_token, back=_back(grant, snap), email=email, error=error, status=status)
    return _with_cookie(rt, page, csrf_token, new_cookie)


def _register_form(
    rt: AuthRuntime,
    snap: RequestSnapshot,
    grant: Any,
    csrf_token: str,
    *,
    new_cookie: bool = False,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    taken: bool = False,
    error: str | None = None,
    status: int = 200,
) -> Response:
    name = grant.request.client.name
    page = register_page(
        snap.params,
        name,
        csrf_token,
        back=_back(grant, snap),
        values=values,
        errors=errors,
        taken=taken,
        error=error,
        status=status,
    )
    return _with_cookie(rt, page, csrf_token, new_cookie)


def _with_cookie(rt: AuthRuntime, page: Response, csrf_token: str, new_cookie: bool) -> Response:
    if new_cookie:
        # Secure when users reach us over https: the public URL (PUBLIC_URL), not the internal AUTH_URL.
        rt.csrf.set_cookie(page, csrf_token, secure=rt.settings.issuer.startswith("https://"))
    return page
