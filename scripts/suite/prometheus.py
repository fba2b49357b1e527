"""Prometheus for the local suite: ``make up`` starts it when Debian's ``prometheus`` is installed.

It scrapes every process of the plan (each service instance on its port, each
report worker on its metrics port, the gateway) with the recording and alerting
rules of deploy/prometheus/rules.yml. Its config and data live in .run/prometheus/;
it listens on 127.0.0.1:9090 (``QUARTET_PROMETHEUS_PORT``). Standard library only.
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path

from scripts.suite import procs as suite_procs
from scripts.suite.procs import ROOT, Proc

NAME = "prometheus"
DEFAULT_PORT = 9090
RULES = ROOT / "deploy" / "prometheus" / "rules.yml"
SCRAPE_INTERVAL = "5s"
READY_PATH = "/-/ready"


def binary() -> str | None:
    return shutil.which("prometheus")


def port(environ: Mapping[str, str], offset: int = 0) -> int:
    """``QUARTET_PROMETHEUS_PORT``, else 9090 + ``QUARTET_PORT_OFFSET``."""
    return int(environ.get("QUARTET_PROMETHEUS_PORT") or DEFAULT_PORT + offset)


def folder() -> Path:
    return suite_procs.RUN_DIR / NAME


def config_path() -> Path:
    return folder() / "prometheus.yml"


def job_of(name: str) -> str:
    """``todos-2`` → ``todos``; the job label is the service (or worker) name."""
    head, sep, tail = name.rpartition("-")
    return head if sep and tail.isdigit() else name


def metrics_port(proc: Proc) -> int | None:
    """Where ``proc`` serves /metrics: the gateway's private METRICS_PORT, a worker's
    WORKER_METRICS_PORT, else its HTTP port."""
    for key in ("METRICS_PORT", "WORKER_METRICS_PORT"):
        raw = proc.env.get(key)
        if raw is not None:
            return int(raw) if raw.isdigit() and int(raw) > 0 else None
    return proc.port


def config(procs: Iterable[Proc]) -> str:
    """prometheus.yml (JSON is YAML) scraping ``procs``, one job per service, the instance name as a label."""
    jobs: dict[str, list[dict[str, object]]] = {}
    for proc in procs:
        scrape_port = metrics_port(proc)
        if scrape_port is not None:
            target: dict[str, object] = {"targets": [f"127.0.0.1:{scrape_port}"], "labels": {"process": proc.name}}
            jobs.setdefault(job_of(proc.name), []).append(target)
    document = {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": job, "metrics_path": "/metrics", "static_configs": targets}
            for job, targets in sorted(jobs.items())
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def write_config(procs: Iterable[Proc]) -> Path:
    folder().mkdir(parents=True, exist_ok=True)
    path = config_path()
    path.write_text(config(procs))
    return path


def command(config_path: Path, listen_port: int, prometheus: str) -> list[str]:
    return [
        prometheus,
        f"--config.file={config_path}",
        f"--storage.tsdb.path={folder() / 'data'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address=127.0.0.1:{listen_port}",
        "--web.enable-lifecycle",  # POST /-/reload after the plan changed
    ]


def reload(listen_port: int) -> bool:
    """Ask a running Prometheus to read its config again (``--web.enable-lifecycle``)."""
    request = urllib.request.Request(f"http://127.0.0.1:{listen_port}/-/reload", method="POST")
    try:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(request, timeout=5) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False
