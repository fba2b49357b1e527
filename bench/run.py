"""Load scenarios against a running suite (`make up` first): what a request costs, and how fast it goes.

Absolute numbers on a shared 2-core box drift from run to run, so every figure is
set beside a baseline measured in the same run on the same machine.

    .venv/bin/python -m bench.run [--gateway URL] [--connections 200] [--duration 10]
                                  [--cost-connections 100] [--cost-duration 8] [--label TEXT] [--tracing]

1. Cost (wrk, ``--cost-connections`` for ``--cost-duration`` s after a 2 s warm-up): the CPU
   per request of the whole machine (less wrk) and of each process (bench/cost.py), for
   - floor: a bare Quart app with the same ``/ping`` route on the same hypercorn settings
     (bench/floor_app.py, started here on a free port);
   - ping-direct: ``GET /ping`` straight to the first ping instance;
   - todos-direct: authenticated ``GET /todos?limit=10`` straight to the first todos instance;
   - todos-gateway: the same read through the gateway (balanced over every todos instance).
   Each is given as a ratio to the floor; appended to bench/results/cost.jsonl.
2. Speed (``--connections``, default 200): ``GET /ping`` and ``GET /todos?limit=10`` through
   the gateway, requests/s, p50/p99 and non-2xx side by side; appended to
   bench/results/todos-read.jsonl.

``--cache`` (``make bench BENCH_ARGS=--cache``) measures the first-page cache on and off
(bench/cache.py); appended to bench/results/cache.jsonl.

``--tracing`` (``make bench BENCH_ARGS=--tracing``) measures instead what tracing costs:
todos-gateway with tracing off, on at 100 % and at 10 % sampling, each on a gateway and
todos instance of its own (bench/tracing_cost.py); appended to bench/results/tracing.jsonl.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench import cost
from bench.table import append_record, print_table
from quartet_client import AuthClient
from scripts.suite.plan import port_offset
from scripts.suite.procs import free_port

ROOT = Path(__file__).resolve().parent.parent

USER_SCOPES = "profile todos:read todos:write"
RUN_DIR = ROOT / ".run"
SUITE_DATABASES = frozenset({"quartet_auth", "quartet_todos", "quartet_reports"})
FLOOR = "floor"
LATENCIES = frozenset({"p50_ms", "p99_ms"})


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("==> installing wrk (apt-get)", flush=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
    return shutil.which("wrk") or sys.exit("wrk is not available")


def wrk(
    binary: str, url: str, token: str | None, connections: int, duration: int, script: str | None = None
) -> dict[str, float]:
    cmd = [binary, "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if script:
        cmd += ["-s", script]
    out = cost.run_quiet([*cmd, url], timeout=duration + 60)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    served = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result = {"rps": rps, "requests": float(served.group(1)) if served else 0.0}
    result["non_2xx"] = float(non2xx.group(1)) if non2xx else 0.0
    result["socket_errors"] = float(sum(int(x) for x in errors.groups())) if errors else 0.0
    for pct in ("50", "99"):
        match = re.search(rf"\s{pct}(?:\.000)?%\s+([\d.]+)(us|ms|s)", out)
        if match:
            value, unit = float(match.group(1)), match.group(2)
            result[f"p{pct}_ms"] = value / 1000 if unit == "us" else value * 1000 if unit == "s" else value
    return result


async def prepare_user(gateway: str) -> str:
    email, password = f"bench-{secrets.token_hex(6)}@example.com", secrets.token_urlsafe(16)
    callback = f"http://localhost:{8080 + port_offset(os.environ)}/app/callback"  # the SPA client's, as make up set it
    async with AuthClient(gateway, redirect_uri=callback) as flows:
        await flows.register(email, password)
        tokens = await flows.sign_in(email, USER_SCOPES, password)
        token = tokens["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        for i in range(30):
            resp = await flows.http.post("/todos", json={"content": f"bench todo {i}"}, headers=headers)
            resp.raise_for_status()
    return str(token)


def suite_pids() -> dict[str, int]:
    """Every process `make up` recorded in .run/<name>.pid that is still running."""
    found = {}
    for pid_file in sorted(RUN_DIR.glob("*.pid")):
        try:
            pid = int(pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if cost.process_seconds(pid) is not None:
            found[pid_file.stem] = pid
    return found


def watched(floor_pid: int, extra: list[str]) -> dict[str, list[int]]:
    """What each cost measurement reads: the floor, the suite's processes, PostgreSQL, broker, Redis."""
    watch = {FLOOR: [floor_pid]}
    watch |= {name: [pid] for name, pid in suite_pids().items()}
    watch |= {name: [int(pid)] for name, _, pid in (item.partition("=") for item in extra)}
    watch["postgres"] = cost.postgres_pids(SUITE_DATABASES)
    watch["broker"] = cost.pids_named("beam.smp", "erl_child_setup", "epmd")
    watch["redis"] = cost.pids_named("redis-server")
    return watch


@contextmanager
def floor_app() -> Iterator[tuple[str, int]]:
    """bench/floor_app.py on a free port; yields (its URL, its pid)."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.floor_app", str(port)], cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the floor app did not start") from None
                time.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(10)


def cost_scenarios(binary: str, args: argparse.Namespace, token: str) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    with floor_app() as (floor_url, floor_pid):
        scenarios = {
            FLOOR: (f"{floor_url}/ping?ECHOMSG=hi", None),
            "ping-direct": (f"{args.ping}/ping?ECHOMSG=hi", None),
            "todos-direct": (f"{args.todos}/todos?limit=10", token),
            "todos-gateway": (f"{args.gateway}/todos?limit=10", token),
        }
        for name, (url, tok) in scenarios.items():
            print(f"==> cost {name}: {args.cost_connections} connections, {args.cost_duration}s", flush=True)
            wrk(binary, url, tok, args.cost_connections, 2)  # warm-up
            watch = watched(floor_pid, args.watch)
            results[name] = cost.measure(
                functools.partial(wrk, binary, url, tok, args.cost_connections, args.cost_duration), watch
            )
    add_ratios(results)
    return results


def add_ratios(results: dict[str, dict[str, float]]) -> None:
    """``<name>_x`` beside every ``<name>_ms``: the machine's to the floor's machine figure, the
    stack's to the floor's stack, each process's to the floor process's own."""
    floor = results[FLOOR]
    bases = {"cpu_ms": floor["cpu_ms"], "stack_ms": floor["stack_ms"], "wrk_ms": floor["wrk_ms"]}
    for figures in results.values():
        for key in [k for k in figures if k.endswith("_ms") and k not in LATENCIES]:
            base = bases.get(key, floor[f"{FLOOR}_ms"])
            figures[key.removesuffix("_ms") + "_x"] = figures[key] / base if base else 0.0


def print_costs(results: dict[str, dict[str, float]]) -> None:
    print(
        f"\n{'cost per request':16} {'req/s':>7} {'machine ms':>10} {'x floor':>7} {'stack ms':>9} {'x floor':>7}"
        "  biggest shares (ms, x floor)"
    )
    skip = {"cpu_ms", "stack_ms", "wrk_ms", *LATENCIES}
    for name, r in results.items():
        shares = sorted(
            ((k.removesuffix("_ms"), v) for k, v in r.items() if k.endswith("_ms") and k not in skip and v >= 0.01),
            key=lambda kv: -kv[1],
        )
        text = ", ".join(f"{k} {v:.2f} ({r[k + '_x']:.2f}x)" for k, v in shares[:5])
        print(
            f"{name:16} {r['rps']:7.0f} {r['cpu_ms']:10.3f} {r['cpu_x']:7.2f} {r['stack_ms']:9.3f}"
            f" {r['stack_x']:7.2f}  {text}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    offset = port_offset(os.environ)  # the suite `make up QUARTET_PORT_OFFSET=...` started
    parser.add_argument("--gateway", default=f"http://127.0.0.1:{8080 + offset}")
    parser.add_argument("--todos", default=f"http://127.0.0.1:{8002 + offset}")
    parser.add_argument("--ping", default=f"http://127.0.0.1:{8003 + offset}")
    parser.add_argument("--connections", type=int, default=200)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--cost-connections", type=int, default=100)
    parser.add_argument("--cost-duration", type=int, default=8)
    parser.add_argument("--label", default="", help="a note kept with the recorded run (before, after ...)")
    parser.add_argument("--only-cost", action="store_true", help="skip the speed scenarios")
    parser.add_argument(
        "--watch", action="append", default=[], metavar="NAME=PID", help="also read this process (one started by hand)"
    )
    parser.add_argument("--tracing", action="store_true", help="tracing off vs 100 %% vs 10 %% sampling")
    parser.add_argument("--cache", action="store_true", help="the first-page cache on vs off (bench/cache.py)")
    parser.add_argument("--auth", default=f"http://127.0.0.1:{8001 + offset}")
    parser.add_argument("--users", type=int, default=1000, help="users of the --cache mix")
    args = parser.parse_args()
    binary = ensure_wrk()
    if args.cache:
        from bench import cache

        def cache_wrk(
            url: str, *, token: str | None, connections: int, duration: int, script: str | None
        ) -> dict[str, float]:
            return wrk(binary, url, token, connections, duration, script)

        figures = cache.run(cache_wrk, args.auth, args.todos, args.users, args.connections, args.duration)
        cache.report(figures)
        cache.record(figures, args.connections, args.duration, args.users)
        return
    token = asyncio.run(prepare_user(args.gateway))
    if args.tracing:
        from bench import tracing_cost

        def run_wrk(url: str, tok: str | None, connections: int, duration: int) -> dict[str, float]:
            return wrk(binary, url, tok, connections, duration)

        costs = tracing_cost.run(run_wrk, token, args.connections, args.duration)
        tracing_cost.report(costs)
        append_record("tracing.jsonl", args.connections, duration=args.duration, results=costs)
        return
    costs = cost_scenarios(binary, args, token)
    append_record("cost.jsonl", args.cost_connections, duration=args.cost_duration, label=args.label, results=costs)
    print_costs(costs)
    if args.only_cost:
        return
    scenarios = {
        "baseline (gateway /ping)": (f"{args.gateway}/ping?ECHOMSG=hi", None),
        "todos-gateway (GET /todos)": (f"{args.gateway}/todos?limit=10", token),
    }
    results = {}
    for name, (url, tok) in scenarios.items():
        print(f"==> {name}: {args.connections} connections, {args.duration}s", flush=True)
        wrk(binary, url, tok, args.connections, 2)  # warm-up
        results[name] = wrk(binary, url, tok, args.connections, args.duration)
    print_table("scenario", 32, results, base="baseline (gateway /ping)", last=("sock err", "socket_errors", 8))
    append_record("todos-read.jsonl", args.connections, label=args.label, results=results)


if __name__ == "__main__":
    main()
