"""Load scenarios against a running suite (`make up` first), each side by side with a baseline.

Speed is reported as ratios to a baseline measured in the same run on the same
machine, because absolute numbers on a shared 2-core box drift from run to run.

    .venv/bin/python -m bench.run [--gateway URL] [--todos URL] [--connections 200] [--duration 10] [--tracing]

Scenarios (wrk, from Debian's `wrk` package, as a separate process on loopback):
- baseline: GET /ping through the gateway (the cheapest request the stack serves);
- todos-gateway: authenticated first-page read GET /todos?limit=10 through the gateway;
- todos-direct: the same read straight to the todos service.
Results are printed and appended to bench/results/todos-read.jsonl.

``--tracing`` (``make bench BENCH_ARGS=--tracing``) measures instead what tracing costs:
todos-gateway with tracing off, on at 100 % and at 10 % sampling, each on a gateway and
todos instance of its own (bench/tracing_cost.py); appended to bench/results/tracing.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bench.table import append_record, print_table
from tests.auth.flows import AuthFlows

ROOT = Path(__file__).resolve().parent.parent


USER_SCOPES = "profile todos:read todos:write"


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("==> installing wrk (apt-get)", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or sys.exit("wrk is not available")


def wrk(binary: str, url: str, token: str | None, connections: int, duration: int) -> dict[str, float]:
    cmd = [binary, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    out = subprocess.run([*cmd, url], check=True, capture_output=True, text=True, timeout=duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result = {"rps": rps, "non_2xx": float(non2xx.group(1)) if non2xx else 0.0}
    result["socket_errors"] = float(sum(int(x) for x in errors.groups())) if errors else 0.0
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[f"p{pct}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return result


async def prepare_user(gateway: str) -> str:
    async with AuthFlows(gateway) as flows:
        user = await flows.register()
        tokens = await flows.sign_in(user["email"], USER_SCOPES)
        token = tokens["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(30):
            resp = await flows.http.post("/todos", json={"content": f"bench todo {i}"}, headers=headers)
            resp.raise_for_status()
    return str(token)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gateway", default="http://127.0.0.1:8080")
    parser.add_argument("--todos", default="http://127.0.0.1:8002")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--tracing", action="store_true", help="tracing off vs 100 %% vs 10 %% sampling")
    args = parser.parse_args()
    binary = ensure_wrk()
    token = asyncio.run(prepare_user(args.gateway))
    if args.tracing:
        from bench import tracing_cost

        def run_wrk(url: str, tok: str | None, connections: int, duration: int) -> dict[str, float]:
            return wrk(binary, url, tok, connections, duration)

        costs = tracing_cost.run(run_wrk, token, args.connections, args.duration)
        tracing_cost.report(costs)
        append_record("tracing.jsonl", args.connections, duration=args.duration, results=costs)
        return
    scenarios = {
        "baseline (gateway /ping)": (f"{args.gateway}/ping?ECHOMSG=hi", None),
        "todos-gateway (GET /todos)": (f"{args.gateway}/todos?limit=10", token),
        "todos-direct (GET /todos)": (f"{args.todos}/todos?limit=10", token),
    }
    results = {}
    for name, (url, tok) in scenarios.items():
        print(f"==> {name}: {args.connections} connections, {args.duration}s", flush=True)
        results[name] = wrk(binary, url, tok, args.connections, args.duration)
    print_table("scenario", 32, results, base="baseline (gateway /ping)", last=("sock err", "socket_errors", 8))
    append_record("todos-read.jsonl", args.connections, results=results)


if __name__ == "__main__":
    main()
