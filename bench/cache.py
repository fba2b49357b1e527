"""What the first-page cache buys (docs/caching.md): the same load with the cache on and off, in one run.

For each mode this starts a todos instance and a gateway of its own (free ports, the
``make up`` suite's todos database and auth), the todos instance with ``CACHE_REDIS_URL``
pointing at the machine's Redis (a key prefix of this run) or empty. Two scenarios per mode:

- **mix**: ``--users`` users (1,000 by default), 95 % ``GET /todos?limit=10`` and 5 %
  ``POST /todos``, each request as a random user (wrk with a Lua script rotating tokens);
- **hot**: one user's ``GET /todos?limit=10`` over and over.

Reported per scenario and mode: requests/s, p99, CPU per request (utime + stime of the
todos and gateway processes from /proc, over the run) and the cache's hit ratio (todos'
``/metrics``). Appended to bench/results/cache.jsonl. Seed 001's anchor: 10x on its read.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import tempfile
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

from bench.stack import todos_behind_gateway
from bench.table import append_record
from quartet_client import AuthClient

USER_SCOPES = "profile todos:read todos:write"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# wrk: each request as a random user; 95 % first-page reads, 5 % creates.
MIX_LUA = """
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do tokens[#tokens + 1] = line end
local n = 0
request = function()
  n = n + 1
  local token = tokens[math.random(#tokens)]
  local headers = {["Authorization"] = "Bearer " .. token}
  if math.random(100) <= 5 then
    headers["Content-Type"] = "application/json"
    return wrk.format("POST", "/todos", headers, '{"content": "bench ' .. n .. '"}')
  end
  return wrk.format("GET", "/todos?limit=10", headers)
end
"""

Wrk = Callable[..., dict[str, float]]


async def make_users(auth: str, todos: str, count: int) -> list[str]:
    """``count`` users with 12 todos each; returns their access tokens.

    Straight to auth and todos (the suite's own instances): the gateway's login budget is
    per address, and a thousand sign-ins from one address is not what is measured.
    """
    tokens: list[str] = []
    async with httpx.AsyncClient(base_url=todos, timeout=30) as api:
        sem = asyncio.Semaphore(4)

        async def one(i: int) -> None:
            async with sem, AuthClient(auth) as flows:  # a cookie jar (login CSRF) per user
                email, password = f"bench-{secrets.token_hex(6)}@example.com", secrets.token_urlsafe(16)
                await flows.register(email, password)
                token = (await flows.sign_in(email, USER_SCOPES, password))["access_token"]
                headers = {"Authorization": f"Bearer {token}"}
                for j in range(12):
                    (await api.post("/todos", json={"content": f"u{i} t{j}"}, headers=headers)).raise_for_status()
                tokens.append(token)
                if len(tokens) % 100 == 0:
                    print(f"    {len(tokens)} users", flush=True)

        await asyncio.gather(*(one(i) for i in range(count)))
    return tokens


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLK_TCK


def cache_counts(todos_url: str) -> tuple[float, float]:
    text = urllib.request.urlopen(f"{todos_url}/metrics", timeout=5).read().decode()

    def value(name: str) -> float:
        match = re.search(rf"^{name} ([\d.e+]+)$", text, re.MULTILINE)
        return float(match.group(1)) if match else 0.0

    return value("page_cache_hits_total"), value("page_cache_misses_total")


# Thousands of users from one loopback address: the per-address budget is not under test.
GATEWAY_ENV = {
    "LOG_LEVEL": "WARNING",
    "RATE_LIMIT_ADDRESS_PER_SECOND": "100000",
    "RATE_LIMIT_ADDRESS_BURST": "100000",
    "RATE_LIMIT_SUBJECT_PER_SECOND": "100000",
    "RATE_LIMIT_SUBJECT_BURST": "100000",
}


def cache_env(cache_url: str, prefix: str) -> dict[str, str]:
    """The todos instance's cache settings: ``cache_url`` empty is the cache off."""
    return {"CACHE_REDIS_URL": cache_url, "CACHE_KEY_PREFIX": prefix, "LOG_LEVEL": "WARNING"}


def run(
    wrk: Wrk, auth: str, todos_url: str, users: int, connections: int, duration: int
) -> dict[str, dict[str, float]]:
    """Both scenarios with the cache on and off; returns their figures by "scenario, mode"."""
    print(f"==> cache: {users} users with 12 todos each", flush=True)
    tokens = asyncio.run(make_users(auth, todos_url, users))
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tokens_file, script = Path(tmp) / "tokens.txt", Path(tmp) / "mix.lua"
        tokens_file.write_text("\n".join(tokens) + "\n")
        script.write_text(MIX_LUA)
        os.environ["BENCH_TOKENS"] = str(tokens_file)
        prefix = f"bench:{uuid.uuid4().hex[:8]}:"
        for mode, url in (("off", ""), ("on", "redis://127.0.0.1:6379/0")):
            with todos_behind_gateway("cache", todos=cache_env(url, prefix), gateway=GATEWAY_ENV) as stack:
                gw, todos, pids = stack.gateway, stack.todos, stack.pids
                for scenario, kwargs in (
                    ("mix", {"script": str(script), "token": None}),
                    ("hot", {"script": None, "token": tokens[0]}),
                ):
                    name = f"{scenario}, cache {mode}"
                    print(f"==> {name}: {connections} connections, {duration}s", flush=True)
                    wrk(f"{gw}/todos?limit=10", connections=connections, duration=2, **kwargs)  # warm-up
                    hits0, misses0 = cache_counts(todos)
                    cpu0 = cpu_seconds(pids)
                    figures = wrk(f"{gw}/todos?limit=10", connections=connections, duration=duration, **kwargs)
                    cpu = cpu_seconds(pids) - cpu0
                    hits, misses = cache_counts(todos)
                    looked = (hits - hits0) + (misses - misses0)
                    figures["cpu_ms_per_request"] = cpu * 1000 / max(1.0, figures["rps"] * duration)
                    figures["hit_ratio"] = (hits - hits0) / looked if looked else 0.0
                    results[name] = figures
    return results


def report(results: dict[str, dict[str, float]]) -> None:
    print(
        f"\n{'scenario':20} {'req/s':>9} {'x off':>7} {'p99 ms':>8} {'CPU ms/req':>11} {'hit ratio':>10} {'non-2xx':>8}"
    )
    for name, r in results.items():
        off = results[name.replace("cache on", "cache off")]["rps"]
        print(
            f"{name:20} {r['rps']:9.0f} {r['rps'] / off:7.2f} {r.get('p99_ms', 0):8.1f}"
            f" {r['cpu_ms_per_request']:11.2f} {r['hit_ratio']:10.2f} {r['non_2xx']:8.0f}"
        )


def record(results: dict[str, dict[str, float]], connections: int, duration: int, users: int) -> None:
    append_record("cache.jsonl", connections, duration=duration, users=users, results=results)
