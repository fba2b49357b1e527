#!/usr/bin/env python3
"""``make seed``: the demo account with a month of todos and one report of each format.

    .venv/bin/python -m scripts.seed [--gateway http://127.0.0.1:8080] [--email ...] [--password ...]

Everything a user could do goes through the gateway's public API: register (409 when the
account exists is fine), sign in the way the SPA does (scripts/signin.py's flow), read
the todos and the summary, ask for reports. The one thing the API cannot do, backdating
todos over the last 30 days, is the todos service's own admin command
(``python -m services.todos seed-demo --owner ID``), run against its own database; it
writes its events through the outbox, so the reports read model follows as it would
for any change. Running this again gives the same demo (see docs/running.md).

``--todos-command`` is how that admin command is reached: by default ``python -m
services.todos`` with the environment ``make up`` gives the todos service (its
DATABASE_URL); with compose, ``docker compose exec -T todos python -m services.todos``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx

from quartet_client import ApiError, AuthClient, QuartetApi, SignInFailed
from quartet_client.api import Report, ReportFormat, Todo
from quartet_client.waiting import until
from scripts.suite.control import child_python
from scripts.suite.plan import plan as build_plan
from scripts.suite.procs import ROOT
from scripts.suite.secrets import with_env_file

DEMO_EMAIL = "demo@quartet.localhost"
DEMO_PASSWORD = "quartet-demo-password"  # the documented password of a local demo account
DEMO_NAME = "Demo User"
SCOPES = "profile todos:read todos:write reports:read reports:write"
FORMATS: tuple[ReportFormat, ...] = ("csv", "pdf", "json")
WAIT_SECONDS = 90.0


class SeedError(Exception):
    pass


def local_todos_command() -> tuple[list[str], dict[str, str]]:
    """``python -m services.todos`` with the settings ``make up`` gives the todos service."""
    environ = with_env_file(os.environ)
    todos = next((p for p in build_plan(environ).services if p.module == "services.todos"), None)
    if todos is None:
        raise SeedError("the todos service is not part of the suite (QUARTET_SERVICES?)")
    return [child_python(environ), "-m", "services.todos"], {**os.environ, **todos.env}


def run_seed_command(command: list[str], env: dict[str, str], owner: str) -> str:
    argv = [*command, "seed-demo", "--owner", owner]
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SeedError(f"{shlex.join(argv)}: {error}") from None
    if done.returncode != 0:
        raise SeedError(f"{shlex.join(argv)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    lines = done.stdout.strip().splitlines()
    return lines[-1] if lines else ""


async def sign_in(gateway: str, email: str, password: str) -> str:
    async with AuthClient(gateway, address="127.0.0.1") as flows:
        try:
            await flows.register(email, password, DEMO_NAME)
        except SignInFailed as error:
            if error.response.status_code != 409:  # 409: the account exists, which is fine
                raise SeedError(str(error)) from None
        try:
            tokens = await flows.sign_in(email, SCOPES, password)
        except SignInFailed as error:
            raise SeedError(
                f"signing in as {email} failed (an account with another password?): {str(error)[:300]}"
            ) from None
    return tokens["access_token"]


async def wait_for(what: str, check: Any) -> Any:
    """Call ``check()`` until it returns something truthy; SeedError after WAIT_SECONDS."""
    return await until(what, check, seconds=WAIT_SECONDS, interval=0.3, error=SeedError)


async def wait_for_read_model(api: QuartetApi, todos: list[Todo]) -> None:
    """The reports summary counts what the todos service holds (the events have arrived)."""
    finished = sum(1 for t in todos if t["is_finished"])

    async def caught_up() -> bool:
        try:
            summary = await api.summary()
        except ApiError:
            return False
        return summary["total"] == len(todos) and summary["finished"] == finished

    await wait_for("the reports read model to count the demo todos", caught_up)


async def ensure_reports(api: QuartetApi) -> dict[str, str]:
    """One finished report of each format: existing ones are kept, missing or failed ones requested."""
    reports = (await api.list_reports(limit=100))["items"]
    chosen: dict[str, str] = {}
    for fmt in FORMATS:
        of_format = [r for r in reports if r["format"] == fmt and r["status"] != "failed"]
        done = [r for r in of_format if r["status"] == "done"]
        if done:
            chosen[fmt] = done[0]["id"]
        elif of_format:
            chosen[fmt] = of_format[0]["id"]
        else:
            try:
                chosen[fmt] = (await api.request_report(fmt))["id"]
            except ApiError as error:
                raise SeedError(str(error)) from None
    for name, report_id in chosen.items():

        async def finished(report_id: str = report_id, fmt: str = name) -> Report | None:
            try:
                report = await api.get_report(report_id)
            except ApiError:  # away for a moment: ask again
                return None
            if report["status"] == "failed":
                raise SeedError(f"the {fmt} report failed: {report['error']}")
            return report if report["status"] == "done" else None

        await wait_for(f"the {name} report", finished)
    return chosen


async def seed(gateway: str, email: str, password: str, command: list[str], env: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=gateway, timeout=20) as anonymous:
        try:
            ready = (await anonymous.get("/readyz")).status_code == 200
        except httpx.HTTPError:
            ready = False
    if not ready:
        raise SeedError(f"the suite does not answer at {gateway}/readyz: run `make up` first")
    token = await sign_in(gateway, email, password)
    async with httpx.AsyncClient(base_url=gateway, timeout=30) as http:
        api = QuartetApi(http, token)
        me = await api.me()
        outcome = run_seed_command(command, env, me["id"])
        todos = await api.all_todos()
        await wait_for_read_model(api, todos)
        reports = await ensure_reports(api)
    return {"user": me, "todos": todos, "reports": reports, "outcome": outcome}


def app_url(gateway: str) -> str:
    parts = urlsplit(gateway)
    host = "localhost" if parts.hostname in {"127.0.0.1", "localhost"} else parts.hostname
    return f"{parts.scheme}://{host}:{parts.port or 80}/app/"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--email", default=DEMO_EMAIL)
    parser.add_argument("--password", default=DEMO_PASSWORD)
    parser.add_argument("--todos-command", help="how to run `python -m services.todos` (default: as make up runs it)")
    args = parser.parse_args()
    gateway = args.gateway.rstrip("/")
    try:
        if args.todos_command:
            command, env = shlex.split(args.todos_command), dict(os.environ)
        else:
            command, env = local_todos_command()
        print(f"==> seeding the demo account {args.email} through {gateway}", flush=True)
        result = asyncio.run(seed(gateway, args.email, args.password, command, env))
    except SeedError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    todos = result["todos"]
    days = len({t["created_at"][:10] for t in todos})
    finished = sum(1 for t in todos if t["is_finished"])
    print(f"    todos service: {result['outcome']}")
    print(f"    {len(todos)} todos over {days} days ({finished} finished); reports: {', '.join(result['reports'])}")
    print("")
    print("Sign in:")
    print(f"  app      {app_url(gateway)}   as {args.email} / {args.password}")
    signin = f".venv/bin/python -m scripts.signin {shlex.quote(args.email)} {shlex.quote(args.password)}"
    if gateway != "http://127.0.0.1:8080":
        signin += f" --gateway {gateway}"
    print(f"  shell    TOKEN=$({signin})")
    print(f"           curl -H \"Authorization: Bearer $TOKEN\" '{gateway}/todos?limit=10'")
    return 0


if __name__ == "__main__":
    sys.exit(main())
