"""scripts/signin.py as the README uses it: one line on failure, and a sign-in-or-register mode (issue 25)."""

from __future__ import annotations

import asyncio
import secrets

import httpx

from tests.commands import run_python
from tests.suite import Suite


async def signin(web: Suite, *args: str) -> tuple[int, str, str]:
    done = await asyncio.to_thread(run_python, "-m", "scripts.signin", *args, "--gateway", web.gateway_url, timeout=60)
    return done.returncode, done.stdout, done.stderr


async def test_or_register_works_the_first_time_and_every_time_after(web: Suite) -> None:
    email = f"shell-{secrets.token_hex(5)}@example.com"
    for _ in range(2):
        code, token, err = await signin(web, "--or-register", email, "a long password")
        assert code == 0 and err == "", err
        async with httpx.AsyncClient(base_url=web.gateway_url, timeout=10) as http:
            me = await http.get("/auth/me", headers={"Authorization": f"Bearer {token.strip()}"})
        assert me.json()["email"] == email

    # --register on an existing account, then a wrong password: one line each, saying what to do.
    code, out, err = await signin(web, "--register", email, "a long password")
    assert (code, out) == (1, "") and err.count("\n") == 1
    assert "already registered" in err and "--or-register" in err
    code, out, err = await signin(web, email, "the wrong password")
    assert (code, out) == (1, "")
    assert err == "signin: sign-in failed: Invalid email or password.\n"


async def test_a_gateway_that_is_not_there_is_one_line() -> None:
    done = await asyncio.to_thread(
        run_python, "-m", "scripts.signin", "x@example.com", "pw", "--gateway", "http://127.0.0.1:9", timeout=60
    )
    assert done.returncode == 1 and done.stdout == "" and done.stderr.count("\n") == 1
    assert "is the suite up? (make up)" in done.stderr
