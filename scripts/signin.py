#!/usr/bin/env python3
"""Sign in from the command line the way the SPA does (authorization code + PKCE) and print an access token.

    .venv/bin/python -m scripts.signin --register you@example.com 'a long password'
    TOKEN=$(.venv/bin/python -m scripts.signin you@example.com 'a long password')
    curl -H "Authorization: Bearer $TOKEN" localhost:8080/todos

For developers and scripts against a local suite; it fills in the login form, so it
needs nothing the browser flow does not.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from quartet_client import AuthClient, SignInFailed  # the same client-side flow the tests drive

SCOPES = "profile todos:read todos:write reports:read reports:write"


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("email")
    parser.add_argument("password")
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--scope", default=SCOPES)
    parser.add_argument("--register", action="store_true", help="create the account first")
    args = parser.parse_args()
    async with AuthClient(args.gateway, address="127.0.0.1") as flows:
        if args.register:
            resp = await flows.http.post("/auth/register", json={"email": args.email, "password": args.password})
            if resp.status_code != 201:
                print(f"register: {resp.status_code} {resp.text}", file=sys.stderr)
                return 1
        try:
            tokens = await flows.sign_in(args.email, args.scope, args.password)
        except SignInFailed as error:
            print(f"sign-in failed: {error}", file=sys.stderr)
            return 1
    print(tokens["access_token"])
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
