#!/usr/bin/env python3
"""Sign in from the command line the way the SPA does (authorization code + PKCE) and print an access token.

    TOKEN=$(.venv/bin/python -m scripts.signin --or-register you@example.com 'a long password')
    curl -H "Authorization: Bearer $TOKEN" localhost:8080/todos

--or-register creates the account when it does not exist yet and signs in either way, so
the same line works the first time and every time after. --register creates it first and
fails if it exists. The token lives 15 minutes: run the line again for a new one.

For developers and scripts against a local suite; it fills in the login form, so it
needs nothing the browser flow does not. On failure it prints one line to stderr (what
went wrong, in the suite's own words) and exits 1; stdout stays empty.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import sys

import httpx

from quartet_client import AuthClient, authorization
from quartet_client.auth import query_of  # the same client-side flow the tests drive

SCOPES = "profile todos:read todos:write reports:read reports:write"
_ALERT = re.compile(r'<p class="error" role="alert">(.*?)</p>', re.S)


class Failed(Exception):
    """One line that says why, for stderr."""


def _said(resp: httpx.Response) -> str:
    """What the suite said about a refusal: problem+json detail, an OAuth error, or the form's alert."""
    if "json" in resp.headers.get("content-type", ""):
        body = resp.json()
        return str(body.get("detail") or body.get("error_description") or body.get("error") or resp.status_code)
    alert = _ALERT.search(resp.text)
    if alert:
        return html.unescape(re.sub(r"<[^>]+>", "", alert[1])).strip()
    return f"HTTP {resp.status_code}"


async def register(flows: AuthClient, email: str, password: str, *, exists_ok: bool) -> None:
    resp = await flows.http.post("/auth/register", json={"email": email, "password": password})
    if resp.status_code == 201 or (resp.status_code == 409 and exists_ok):
        return
    if resp.status_code == 409:
        raise Failed(f"{email} is already registered: leave out --register (or use --or-register)")
    raise Failed(f"could not register: {_said(resp)}")


async def sign_in(flows: AuthClient, email: str, password: str, scope: str) -> str:
    auth = authorization(scope)
    form = await flows.login_form(auth)
    if form.status_code != 200:
        raise Failed(f"the sign-in form was refused: {_said(form)}")
    resp = await flows.submit_login(form.text, email, password)
    if resp.status_code != 302:
        raise Failed(f"sign-in failed: {_said(resp)}")
    code = query_of(resp.headers["location"]).get("code")
    if not code:
        raise Failed(f"sign-in failed: {query_of(resp.headers['location']).get('error', 'no code')}")
    tokens = await flows.exchange(code, auth.verifier)
    if tokens.status_code != 200:
        raise Failed(f"the token request failed: {_said(tokens)}")
    return str(tokens.json()["access_token"])


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("email")
    parser.add_argument("password")
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--scope", default=SCOPES)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--register", action="store_true", help="create the account first (fails if it exists)")
    mode.add_argument("--or-register", action="store_true", help="create the account if it is new, then sign in")
    args = parser.parse_args()
    try:
        async with AuthClient(args.gateway, address="127.0.0.1") as flows:
            if args.register or args.or_register:
                await register(flows, args.email, args.password, exists_ok=args.or_register)
            token = await sign_in(flows, args.email, args.password, args.scope)
    except Failed as refused:
        print(f"signin: {refused}", file=sys.stderr)
        return 1
    except httpx.HTTPError as error:
        print(
            f"signin: cannot reach {args.gateway} ({type(error).__name__}); is the suite up? (make up)", file=sys.stderr
        )
        return 1
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
