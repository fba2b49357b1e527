"""How the bench scripts show and keep their figures: one results table, one JSON line per run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def print_table(
    title: str, width: int, results: dict[str, dict[str, float]], *, base: str, last: tuple[str, str, int]
) -> None:
    """req/s, its ratio to row ``base``, p50, p99 and non-2xx per row; then ``last`` (header, key, width)."""
    header, key, w = last
    base_rps = results[base]["rps"]
    print(f"\n{title:{width}} {'req/s':>9} {'ratio':>7} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {header:>{w}}")
    for name, r in results.items():
        print(
            f"{name:{width}} {r['rps']:9.0f} {r['rps'] / base_rps:7.2f} {r.get('p50_ms', 0):8.1f}"
            f" {r.get('p99_ms', 0):8.1f} {r['non_2xx']:8.0f} {r[key]:{w}.0f}"
        )


def append_record(file_name: str, connections: int, **figures: Any) -> None:
    """Append one run to bench/results/``file_name``: when, how many connections, and its figures."""
    RESULTS.mkdir(exist_ok=True)
    record = {"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "connections": connections, **figures}
    with (RESULTS / file_name).open("a") as out:
        out.write(json.dumps(record) + "\n")
