"""scripts/suite/, the local supervisor behind `make up` / `make down`: plan, pid safety, lifecycle."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.suite import checkout
from scripts.suite import procs as suite_procs
from scripts.suite import table as suite_table
from scripts.suite.control import resolve, stop_names
from scripts.suite.plan import DB_POOL_FLOOR, DEFAULT_DB_CONNECTION_BUDGET, restart_order
from scripts.suite.plan import plan as build_plan
from tests.support import free_port

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def run_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(suite_procs, "RUN_DIR", tmp_path)
    return tmp_path


@pytest.fixture
def unrelated_process() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "60"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_every_process_of_the_table_runs_a_module_of_this_checkout() -> None:
    for name, module in suite_table.modules().items():
        path = ROOT.joinpath(*module.split("."))
        assert (path / "__main__.py").is_file() or path.with_suffix(".py").is_file(), name
    assert {p.name for p in build_plan({}).all_procs()} >= set(suite_table.modules())


def test_quartet_services_narrows_the_plan_to_the_named_services() -> None:
    plan = build_plan({"QUARTET_SERVICES": "ping, todos"})
    assert [s.name for s in plan.chosen] == ["todos", "ping"]
    assert {p.name for p in plan.services} == {"todos", "todos-2", "ping", "ping-2"}
    assert plan.extras == [] and set(plan.gateway.env) >= {"TODOS_URLS", "PING_URLS"}
    assert "AUTH_URLS" not in plan.gateway.env
    with pytest.raises(SystemExit, match="unknown services: nosuch"):
        build_plan({"QUARTET_SERVICES": "nosuch"})


def test_plan_runs_two_instances_of_each_service_by_default_on_port_plus_ten() -> None:
    plan = build_plan({})
    ports = {p.name: p.port for p in plan.services}
    assert ports == {
        **{"auth": 8001, "todos": 8002, "ping": 8003, "reports": 8004, "live": 8005},
        **{"auth-2": 8011, "todos-2": 8012, "ping-2": 8013, "reports-2": 8014, "live-2": 8015},
    }
    assert [p.name for p in plan.extras] == ["reports-worker"]
    assert plan.gateway is not None and plan.gateway.port == 8080
    assert plan.gateway.env["TODOS_URLS"] == "http://127.0.0.1:8002,http://127.0.0.1:8012"
    todos2 = next(p for p in plan.services if p.name == "todos-2")
    assert todos2.env["PORT"] == "8012" and todos2.env["INSTANCE"] == "todos-2"
    assert todos2.env["DRAIN_DELAY_SECONDS"] == "6"


def test_instance_counts_are_set_per_service_or_for_all() -> None:
    plan = build_plan({"QUARTET_INSTANCES": "3", "PING_INSTANCES": "1"})
    assert plan.gateway is not None
    assert plan.gateway.env["PING_URLS"] == "http://127.0.0.1:8003"
    assert plan.gateway.env["TODOS_URLS"] == ",".join(f"http://127.0.0.1:{p}" for p in (8002, 8012, 8022))
    assert [p.name for p in plan.extras] == ["reports-worker", "reports-worker-2", "reports-worker-3"]


@pytest.mark.parametrize("instances", ["1", "2", "3", "5"])
def test_every_pool_full_stays_within_the_connection_budget(instances: str) -> None:
    plan = build_plan({"QUARTET_INSTANCES": instances})
    pools = [int(p.env["DB_POOL_MAX"]) for p in plan.services + plan.extras if "DATABASE_URL" in p.env]
    assert sum(pools) <= DEFAULT_DB_CONNECTION_BUDGET
    assert min(pools) >= DB_POOL_FLOOR
    assert all("DB_POOL_MAX" not in p.env for p in plan.services if p.name.startswith("ping"))


def test_a_budget_too_small_for_the_instances_stops_with_a_clear_message() -> None:
    with pytest.raises(SystemExit, match="QUARTET_DB_CONNECTION_BUDGET=10"):
        build_plan({"QUARTET_INSTANCES": "3", "QUARTET_DB_CONNECTION_BUDGET": "10"})


def test_restart_takes_one_service_instance_by_instance_then_its_workers() -> None:
    plan = build_plan({})
    assert [p.name for p in restart_order(plan, ["reports"])] == ["reports", "reports-2", "reports-worker"]
    everything = [p.name for p in restart_order(plan, [])]
    assert "gateway" not in everything and everything[:2] == ["auth", "auth-2"]
    assert [p.name for p in restart_order(plan, ["gateway"])] == ["gateway"]
    with pytest.raises(SystemExit, match="unknown service"):
        restart_order(plan, ["nosuch"])


def test_each_database_service_gets_its_own_role_and_database() -> None:
    plan = build_plan({"TODOS_DB_PASSWORD": "s3cret/x", "QUARTET_CHECKOUT_ID": ""})
    urls = {p.name: p.env.get("DATABASE_URL") for p in plan.services + plan.extras}
    assert urls["auth"] == "postgresql://quartet_auth:quartet_auth_dev@127.0.0.1:5432/quartet_auth"
    assert urls["todos"] == "postgresql://quartet_todos:s3cret%2Fx@127.0.0.1:5432/quartet_todos"
    assert urls["reports-worker"] == urls["reports"]
    assert urls["ping"] is None


def test_the_callers_environment_sets_shared_settings_but_not_ports() -> None:
    plan = build_plan({"LOG_LEVEL": "DEBUG", "PORT": "1", "REGION": "eu"})
    ping = next(p for p in plan.services if p.name == "ping")
    assert (ping.env["LOG_LEVEL"], ping.env["REGION"], ping.env["PORT"]) == ("DEBUG", "eu", "8003")


def test_instance_counts_are_bounded() -> None:
    with pytest.raises(SystemExit):
        build_plan({"PING_INSTANCES": "0"})
    with pytest.raises(SystemExit):
        build_plan({"PING_INSTANCES": "many"})


def test_process_names_resolve_to_module_and_port() -> None:
    assert resolve("todos-2") == ("services.todos", 8012)
    assert resolve("reports-worker") == ("services.reports.worker", None)
    assert resolve("gateway") == ("gateway", 8080)
    assert resolve("postgres") is None


def test_a_stale_pid_file_is_removed_without_signalling_the_process_that_now_has_the_pid(
    run_dir: Path, unrelated_process: subprocess.Popen[bytes]
) -> None:
    (run_dir / "ping.pid").write_text(f"{unrelated_process.pid}\n")
    outcome = stop_names(["ping"], {})
    assert outcome == {"ping": "stale pid file removed (pid not ours, not signalled)"}
    assert unrelated_process.poll() is None
    assert not (run_dir / "ping.pid").exists()


def test_started_process_is_ready_recognised_as_ours_and_stopped(run_dir: Path) -> None:
    port = free_port()
    proc = suite_procs.Proc("ping", "services.ping", port, {"PORT": str(port), "HOST": "127.0.0.1"})
    pid = suite_procs.start(proc, sys.executable, {"PATH": "/usr/bin:/bin", "LOG_LEVEL": "INFO"})
    try:
        assert (run_dir / "ping.pid").read_text().strip() == str(pid)
        suite_procs.wait_ready([(proc, pid)], timeout=30)
        assert suite_procs.is_ours(pid, "services.ping")
        assert not suite_procs.is_ours(pid, "services.todos")
        assert stop_names(["ping"], {}) == {"ping": "stopped"}
        assert not suite_procs.alive(pid)
        assert not (run_dir / "ping.pid").exists()
        assert "suite starts services.ping" in (run_dir / "ping.log").read_text()
    finally:
        if suite_procs.alive(pid):
            suite_procs.stop([("ping", pid)], timeout=5)


def test_a_checkouts_names_come_from_its_path_so_two_checkouts_share_nothing() -> None:
    cid = checkout.checkout_id({})
    assert cid == hashlib.sha256(str(ROOT).encode()).hexdigest()[:8]
    plan = build_plan({})
    auth = next(p for p in plan.services if p.name == "auth")
    assert auth.env["DATABASE_URL"].endswith(f"/quartet_auth_{cid}")
    assert auth.env["AMQP_URL"].startswith(f"amqp://quartet_auth_{cid}:")
    assert auth.env["AMQP_URL"].endswith(f"@127.0.0.1:5672/quartet-{cid}")
    producers = json.loads(auth.env["EVENTS_PRODUCERS"])
    assert producers == {
        "user": f"quartet_auth_{cid}",
        "todo": f"quartet_todos_{cid}",
        "report": f"quartet_reports_{cid}",
    }
    other = build_plan({"QUARTET_CHECKOUT_ID": "b2"})
    assert next(p for p in other.services if p.name == "auth").env["DATABASE_URL"].endswith("/quartet_auth_b2")
    with pytest.raises(SystemExit, match="QUARTET_CHECKOUT_ID"):
        build_plan({"QUARTET_CHECKOUT_ID": "Not/Valid"})


def test_a_port_offset_moves_every_port_and_the_urls_that_name_them() -> None:
    plan = build_plan({"QUARTET_PORT_OFFSET": "20000", "QUARTET_PROMETHEUS": "1"})
    ports = {p.name: p.port for p in plan.all_procs()}
    assert ports["auth"] == 28001 and ports["todos-2"] == 28012 and ports["gateway"] == 28080
    assert plan.gateway_metrics_port == 29080
    worker = next(p for p in plan.extras if p.name == "reports-worker")
    assert worker.env["WORKER_METRICS_PORT"] == "29104"
    auth = next(p for p in plan.services if p.name == "auth")
    assert auth.env["AUTH_URL"] == "http://127.0.0.1:28001" and auth.env["PUBLIC_URL"] == "http://localhost:28080"
    assert auth.env["WEB_REDIRECT_URIS"] == "http://localhost:28080/app/callback"
    assert plan.gateway.env["CORS_ORIGINS"] == "http://localhost:28080"
    assert plan.gateway.env["TODOS_URLS"] == "http://127.0.0.1:28002,http://127.0.0.1:28012"
    if plan.prometheus is not None:
        assert plan.prometheus.port == 29090 and plan.prometheus.ready_path == "/-/ready"
    # Without an offset, nothing the services default to is set by the plan.
    assert "WEB_REDIRECT_URIS" not in next(p for p in build_plan({}).services if p.name == "auth").env


def test_every_process_up_starts_is_in_the_plan_prometheus_included() -> None:
    plan = build_plan({})
    if plan.prometheus is None:
        pytest.skip("Debian's prometheus is not installed")
    assert plan.prometheus in plan.all_procs()
    assert build_plan({"QUARTET_PROMETHEUS": "0"}).prometheus is None
