"""What tracing costs: the same read through a gateway and a todos instance with tracing off, 100 % and 10 %.

For each mode this starts a gateway and a todos instance of its own (free ports, the
``make up`` suite's todos database and auth), with the OTEL_* variables of the mode,
exporting to a sink in this process that accepts OTLP/HTTP and discards it (so the
export cost is paid, the backend's is not). wrk drives authenticated
``GET /todos?limit=10`` through that gateway. Reported as req/s and p99 per mode, and
the ratio to "off", measured in one run on the same machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.table import print_table
from scripts.suite.plan import plan as build_plan
from scripts.suite.procs import free_port
from scripts.suite.table import SHARED_DEFAULTS

ROOT = Path(__file__).resolve().parent.parent

MODES: dict[str, dict[str, str]] = {
    "off": {},
    "on, 100 %": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "1.0"},
    "on, 10 %": {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"},
}


@contextmanager
def span_sink() -> Iterator[tuple[str, dict[str, int]]]:
    """An OTLP/HTTP endpoint that reads and drops every export; yields (url, counters)."""
    counts = {"exports": 0, "bytes": 0}

    class Sink(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            counts["exports"] += 1
            counts["bytes"] += len(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counts
    finally:
        server.shutdown()
        server.server_close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s")


@contextmanager
def traced_stack(otel: dict[str, str], log_dir: Path) -> Iterator[str]:
    """A todos instance and a gateway in front of it, with ``otel``; yields the gateway's URL."""
    plan = build_plan(os.environ)
    todos_env = next(p.env for p in plan.services if p.name == "todos")
    todos_port, gateway_port = free_port(), free_port()
    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    envs = {
        "todos": {**base, **todos_env, "PORT": str(todos_port), "INSTANCE": "bench-todos", **otel},
        "gateway": {
            **base,
            **SHARED_DEFAULTS,
            **plan.upstreams,
            "HOST": "127.0.0.1",
            "PORT": str(gateway_port),
            "INSTANCE": "bench-gateway",
            "TODOS_URLS": f"http://127.0.0.1:{todos_port}",
            **otel,
        },
    }
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, module in (("todos", "services.todos"), ("gateway", "gateway")):
            log = (log_dir / f"bench-{name}.log").open("ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", module], cwd=ROOT, env=envs[name], stdout=log, stderr=subprocess.STDOUT
            )
            procs.append(proc)
            _wait_ready(f"http://127.0.0.1:{envs[name]['PORT']}", proc)
        yield f"http://127.0.0.1:{gateway_port}"
    finally:
        for proc in reversed(procs):
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def run(
    wrk: Callable[[str, str | None, int, int], dict[str, float]], token: str, connections: int, duration: int
) -> dict[str, dict[str, float]]:
    """Each mode in turn; returns its wrk figures plus the spans' export volume."""
    log_dir = ROOT / ".run"
    log_dir.mkdir(exist_ok=True)
    results: dict[str, dict[str, float]] = {}
    with span_sink() as (sink_url, counts):
        for mode, sampling in MODES.items():
            otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, **sampling} if sampling else {}
            with traced_stack(otel, log_dir) as gateway:
                print(f"==> tracing {mode}: {connections} connections, {duration}s", flush=True)
                before = dict(counts)
                wrk(f"{gateway}/todos?limit=10", token, connections, 2)  # warm-up
                results[mode] = wrk(f"{gateway}/todos?limit=10", token, connections, duration)
                time.sleep(1)  # the batch processor's last export
                results[mode]["exported_kb"] = (counts["bytes"] - before["bytes"]) / 1024
    return results


def report(results: dict[str, dict[str, float]]) -> None:
    print_table("tracing", 14, results, base="off", last=("OTLP KB", "exported_kb", 9))
