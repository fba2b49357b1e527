"""Metrics that are all there, and the Prometheus rules and configs that read them (checked with promtool).

promtool comes with Debian's ``prometheus`` package, which scripts/bootstrap.py installs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path

import httpx
import yaml
from prometheus_client import generate_latest

from gateway.metrics import GatewayMetrics
from scripts.suite import prometheus as suite_prometheus
from scripts.suite.plan import all_procs
from scripts.suite.plan import plan as build_plan
from tests.suite import Suite

ROOT = Path(__file__).resolve().parent.parent
PROMETHEUS = ROOT / "deploy" / "prometheus"

DEFAULT_COLLECTORS = ("process_resident_memory_bytes", "process_cpu_seconds_total", "python_info", "python_gc_")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    program = shutil.which("promtool")
    assert program, "promtool is missing: `make bootstrap` installs Debian's prometheus package"
    return subprocess.run([program, *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_rules_are_valid() -> None:
    done = promtool("check", "rules", str(PROMETHEUS / "rules.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_record_rate_error_ratio_and_p99_per_route_and_fire_their_alerts() -> None:
    done = promtool("test", "rules", str(PROMETHEUS / "rules_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_make_up_scrapes_every_instance_and_worker_with_the_rules(tmp_path: Path) -> None:
    the_plan = build_plan({"QUARTET_INSTANCES": "2", "REPORTS_WORKER_INSTANCES": "2"})
    procs = all_procs(the_plan)
    path = tmp_path / "prometheus.yml"
    path.write_text(suite_prometheus.config(procs))
    done = promtool("check", "config", str(path))  # also checks the rule files it names
    assert done.returncode == 0, done.stdout + done.stderr
    config = yaml.safe_load(path.read_text())
    targets = {
        (job["job_name"], target["labels"]["process"], target["targets"][0])
        for job in config["scrape_configs"]
        for target in job["static_configs"]
    }
    assert ("todos", "todos-2", "127.0.0.1:8012") in targets
    # The gateway's private metrics listener: its public port serves no /metrics.
    assert ("gateway", "gateway", "127.0.0.1:9080") in targets
    assert ("reports-worker", "reports-worker", "127.0.0.1:9104") in targets
    assert ("reports-worker", "reports-worker-2", "127.0.0.1:9114") in targets
    assert {process for _, process, _ in targets} == {p.name for p in procs}


def test_the_compose_prometheus_config_is_valid(tmp_path: Path) -> None:
    shutil.copy(PROMETHEUS / "rules.yml", tmp_path / "rules.yml")
    config = (PROMETHEUS / "compose.yml").read_text().replace("/etc/prometheus/rules.yml", "rules.yml")
    (tmp_path / "prometheus.yml").write_text(config)
    done = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gateway_registry_has_the_process_platform_and_gc_collectors() -> None:
    text = generate_latest(GatewayMetrics().registry).decode()
    for name in DEFAULT_COLLECTORS:
        assert name in text, name


async def scrape(url: str, *wanted: str, timeout: float = 20) -> str:
    """``url``'s metrics once every ``wanted`` string is in them (queue depths refresh every few seconds)."""
    deadline = asyncio.get_running_loop().time() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            resp = await http.get(url)
            assert resp.status_code == 200
            if all(w in resp.text for w in wanted) or asyncio.get_running_loop().time() > deadline:
                return resp.text
            await asyncio.sleep(0.5)


async def test_services_export_default_collectors_outbox_lag_and_queue_depths(suite: Suite) -> None:
    queue = f"{suite.envs['reports']['SERVICE_NAME']}.events"  # the service name is its queues' prefix
    text = await scrape(suite.reports_url + "/metrics", f'events_queue_messages{{queue="{queue}"}}')
    for name in (*DEFAULT_COLLECTORS, "outbox_oldest_pending_seconds", "outbox_pending"):
        assert name in text, name
    assert f'events_queue_messages{{queue="{queue}"}}' in text
    assert f'events_queue_messages{{queue="{queue}.dlq"}}' in text


async def test_the_worker_serves_its_metrics_on_its_own_port(suite: Suite) -> None:
    worker = suite.processes["reports-worker"]
    started = [json.loads(line) for line in worker.logs().splitlines() if '"worker metrics"' in line]
    assert started, "the worker did not say where its metrics are"
    jobs = suite.jobs_queue()
    text = await scrape(started[-1]["url"], f'events_queue_messages{{queue="{jobs}"}}')
    for name in (*DEFAULT_COLLECTORS, "outbox_oldest_pending_seconds", "outbox_pending"):
        assert name in text, name
    assert f'events_queue_messages{{queue="{jobs}"}}' in text
