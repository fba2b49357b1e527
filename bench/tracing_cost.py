"""What tracing costs: the same read through a gateway and a todos instance with tracing off, 100 % and 10 %.

For each mode this starts a gateway and a todos instance of its own (free ports, the
``make up`` suite's todos database and auth), with the OTEL_* variables of the mode,
exporting to a sink in this process that accepts OTLP/HTTP and discards it (so the
export cost is paid, the backend's is not). wrk drives authenticated
``GET /todos?limit=10`` through that gateway. Reported as req/s and p99 per mode, and
the ratio to "off", measured in one run on the same machine.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.stack import todos_behind_gateway
from bench.table import print_table

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


def run(
    wrk: Callable[[str, str | None, int, int], dict[str, float]], token: str, connections: int, duration: int
) -> dict[str, dict[str, float]]:
    """Each mode in turn; returns its wrk figures plus the spans' export volume."""
    results: dict[str, dict[str, float]] = {}
    with span_sink() as (sink_url, counts):
        for mode, sampling in MODES.items():
            otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": sink_url, **sampling} if sampling else {}
            with todos_behind_gateway("tracing", todos=otel, gateway=otel, drop=("OTEL_",)) as stack:
                gateway = stack.gateway
                print(f"==> tracing {mode}: {connections} connections, {duration}s", flush=True)
                before = dict(counts)
                wrk(f"{gateway}/todos?limit=10", token, connections, 2)  # warm-up
                results[mode] = wrk(f"{gateway}/todos?limit=10", token, connections, duration)
                time.sleep(1)  # the batch processor's last export
                results[mode]["exported_kb"] = (counts["bytes"] - before["bytes"]) / 1024
    return results


def report(results: dict[str, dict[str, float]]) -> None:
    print_table("tracing", 14, results, base="off", last=("OTLP KB", "exported_kb", 9))
