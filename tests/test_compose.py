"""compose.yaml and the Dockerfile describe the whole suite (no Docker engine here: we parse them).

The service list is checked against the table of scripts/suite/table.py, so the two ways
of running the suite cannot drift apart.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from scripts import broker_policy, compose_test
from scripts.suite import broker as suite_broker
from scripts.suite import procs
from scripts.suite import table as suite_table
from scripts.suite.secrets import BROKER_PASSWORDS, GENERATED, write_definitions
from services.kit.config import DEFAULT_EVENT_PRODUCERS

ROOT = Path(__file__).resolve().parent.parent

INFRA = {"postgres", "rabbitmq", "redis"}
# The trace backend and the metrics server (docs/observability.md).
OBSERVABILITY = {"jaeger", "prometheus"}
# Every process of the suite's table (services, workers, the gateway) -> its module.
MODULES = suite_table.modules()
APP_SERVICES = set(MODULES)
WORKERS = set(suite_table.workers())
HTTP_PORTS = {s.name: s.port for s in (*suite_table.SERVICES, suite_table.GATEWAY)}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    return dict(compose["services"])


def test_compose_runs_every_service_of_the_suite_with_postgres_and_rabbitmq(services: dict[str, Any]) -> None:
    # Every process of the table, and nothing the table does not know besides the servers.
    assert set(services) == INFRA | OBSERVABILITY | APP_SERVICES
    assert {"auth", "todos", "ping", "reports", "reports-worker", "gateway"} <= APP_SERVICES
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["rabbitmq"]["image"].startswith("rabbitmq:3-management")
    assert services["redis"]["image"].startswith("redis:")


def test_every_app_service_runs_its_module_from_the_one_image(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        svc = services[name]
        assert svc["build"] == ".", name
        assert svc["image"] == "quartet:dev", name
        assert svc["command"] == ["python", "-m", MODULES[name]], name


def test_http_services_publish_the_ports_of_the_contract(services: dict[str, Any]) -> None:
    assert HTTP_PORTS == {"auth": 8001, "todos": 8002, "ping": 8003, "reports": 8004, "live": 8005, "gateway": 8080}
    for name, port in HTTP_PORTS.items():
        assert f"{port}:{port}" in services[name]["ports"], name
        assert services[name]["environment"]["PORT"] == str(port), name
    for name, (_, worker) in suite_table.workers().items():
        assert "ports" not in services[name]
        assert "PORT" not in services[name]["environment"]
        # Its one port: Prometheus metrics, on the table's port (scraped on the compose network only).
        assert services[name]["environment"]["WORKER_METRICS_PORT"] == str(worker.metrics_port), name


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        check = svc.get("healthcheck")
        assert check and check.get("test"), f"{name} has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_http_services_are_healthy_when_readyz_answers(services: dict[str, Any]) -> None:
    for name, port in HTTP_PORTS.items():
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        assert f"http://127.0.0.1:{port}/readyz" in test[3], name


class _Readyz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def readyz_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("status", "healthy"), [(200, True), (503, False)])
def test_the_healthcheck_one_liner_fails_unless_readyz_is_200(
    services: dict[str, Any], readyz_server: ThreadingHTTPServer, status: int, healthy: bool
) -> None:
    _Readyz.status = status
    port = readyz_server.server_address[1]
    for name, svc_port in HTTP_PORTS.items():
        code = services[name]["healthcheck"]["test"][3].replace(f":{svc_port}/", f":{port}/")
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30, check=False)
        assert (done.returncode == 0) is healthy, (name, done.stderr.decode())


def test_every_dependency_waits_for_a_healthy_service(services: dict[str, Any]) -> None:
    for name, svc in services.items():
        depends = svc.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on must name a condition"
        for dep, how in depends.items():
            assert dep in services, (name, dep)
            assert how == {"condition": "service_healthy"}, (name, dep)
            assert services[dep].get("healthcheck"), (name, dep)
    for name in APP_SERVICES - {"ping", "gateway", "live", *WORKERS}:
        assert {"postgres", "rabbitmq"} <= set(services[name]["depends_on"]), name
    assert {"redis", "rabbitmq"} <= set(services["live"]["depends_on"])  # no database of its own
    assert set(services["gateway"]["depends_on"]) == {s.name for s in suite_table.SERVICES} | {"redis"}


def test_depends_on_has_no_cycle(services: dict[str, Any]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"cycle: {' -> '.join((*path, name))}"
        if name not in done:
            for dep in services[name].get("depends_on", {}):
                visit(dep, (*path, name))
            done.add(name)

    for name in services:
        visit(name, ())


def test_services_are_configured_by_environment_for_the_compose_network(services: dict[str, Any]) -> None:
    for name in APP_SERVICES:
        env = services[name]["environment"]
        assert env["HOST"] == "0.0.0.0", name
        assert env["INSTANCE"] == name, name
        for key in ("REGION", "LOG_LEVEL", "AUTH_URL", "EVENTS_EXCHANGE"):
            assert key in env, (name, key)
    for name in ("reports", "reports-worker"):
        assert services[name]["environment"]["TODOS_URL"] == "http://todos:8002", name
    gateway_env = services["gateway"]["environment"]
    for svc in suite_table.SERVICES:
        assert gateway_env[svc.urls_setting] == f"http://{svc.name}:{svc.port}"


def test_each_database_service_gets_its_own_database_and_role(services: dict[str, Any]) -> None:
    init = (ROOT / "deploy/compose/postgres-init.sql").read_text()
    mounts = services["postgres"]["volumes"]
    assert any(m.startswith("./deploy/compose/postgres-init.sql:/docker-entrypoint-initdb.d/") for m in mounts)
    users = {}
    for svc in suite_table.SERVICES:
        if not svc.has_database:
            assert "DATABASE_URL" not in services[svc.name]["environment"]
            continue
        url = urlsplit(services[svc.name]["environment"]["DATABASE_URL"])
        db = f"quartet_{svc.name}"
        assert (url.hostname, url.port, url.path, url.username) == ("postgres", 5432, f"/{db}", db)
        assert re.search(rf"CREATE ROLE {db} LOGIN PASSWORD '{re.escape(url.password or '')}';", init), db
        assert f"CREATE DATABASE {db} OWNER {db};" in init
        users[svc.name] = url.username
    # The worker shares its service's database.
    for svc in suite_table.SERVICES:
        for extra in svc.extras:
            if svc.has_database:
                assert (
                    services[extra.name]["environment"]["DATABASE_URL"]
                    == services[svc.name]["environment"]["DATABASE_URL"]
                )
    assert len(set(users.values())) == len(users)


def test_dockerfile_is_slim_python_313_from_the_hashed_lock_and_not_root() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    instructions = [line.strip() for line in dockerfile.splitlines() if line.strip() and not line.startswith("#")]
    stages = [line for line in instructions if line.startswith("FROM ")]
    # The newest Python the whole locked set supports (docs/running.md), in both stages.
    assert stages == ["FROM python:3.13-slim AS lock", "FROM python:3.13-slim"]
    # The lock stage exports uv.lock's runtime part with its hashes; the image installs exactly that.
    assert "COPY pyproject.toml uv.lock ./" in instructions
    assert re.search(r"uv export --locked --no-dev --no-emit-project --format requirements-txt", dockerfile)
    assert re.search(r"pip install --require-hashes --no-deps -r /tmp/uv\.txt", dockerfile)
    assert re.search(r"pip install --require-hashes --no-deps -r /tmp/requirements\.txt", dockerfile)
    assert "COPY --from=lock /requirements.txt /tmp/requirements.txt" in instructions
    users = [line.split()[1] for line in instructions if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    assert any(line.startswith("CMD [") for line in instructions)
    for folder in ("services", "gateway", "web"):
        assert f"COPY {folder} ./{folder}" in instructions


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", ".run"} <= ignored
    assert not {"services", "gateway", "web", "pyproject.toml", "uv.lock"} & ignored
    # The lock stage reads the locked uv's hashes with scripts/lockfile.py: the one script let in.
    assert "scripts" in ignored and "!scripts/lockfile.py" in ignored


def test_auth_believes_forwarded_addresses_only_from_the_gateway(services: dict[str, Any]) -> None:
    # Otherwise every login through the gateway counts against one shared per-address budget.
    gateway_address = services["gateway"]["networks"]["default"]["ipv4_address"]
    assert services["auth"]["environment"]["TRUSTED_PROXIES"] == gateway_address


def test_the_gateway_shares_its_rate_limit_buckets_through_the_compose_redis(services: dict[str, Any]) -> None:
    from gateway.config import GatewaySettings

    env = services["gateway"]["environment"]
    url = urlsplit(env["REDIS_URL"])
    assert (url.scheme, url.hostname, url.port) == ("redis", "redis", 6379)
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    # The value is one the gateway accepts, and it is the setting that switches buckets to Redis.
    settings = GatewaySettings(**{k.lower(): v for k, v in env.items() if k in {"REDIS_URL", "PORT"}})
    assert settings.redis_url == env["REDIS_URL"]
    # Nothing else talks to Redis: the services never get its address.
    for name in APP_SERVICES - {"gateway"}:
        assert "REDIS_URL" not in services[name]["environment"], name


# --- the broker: one user per service, no guest (issue 15) -------------------------------


def test_each_broker_service_connects_as_its_own_user_and_nothing_uses_guest(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    assert "AMQP_URL" not in compose["x-env"]
    for name in APP_SERVICES:
        env = services[name]["environment"]
        role = suite_broker.ROLE_OF.get(name)
        if role is None:  # ping and the gateway never touch the broker
            assert "AMQP_URL" not in env, name
            continue
        # The password is this checkout's generated one (compose substitutes it), never in the file.
        found = re.fullmatch(r"amqp://([a-z_]+):\$\{([A-Z_]+):\?[^}]+\}@rabbitmq:5672/", env["AMQP_URL"])
        assert found, (name, env["AMQP_URL"])
        assert found.groups() == (suite_broker.ROLES[role].user, BROKER_PASSWORDS[role]), name
    assert "guest" not in (ROOT / "compose.yaml").read_text()


def test_rabbitmq_loads_the_generated_definitions_and_publishes_only_the_ui_on_loopback(
    services: dict[str, Any],
) -> None:
    rabbit = services["rabbitmq"]
    mounts = dict(m.rsplit(":", 1)[0].split(":", 1) for m in rabbit["volumes"])
    assert mounts["./.run/rabbitmq-definitions.json"] == "/etc/rabbitmq/definitions.json"
    conf_target = mounts["./deploy/compose/rabbitmq.conf"]
    assert conf_target.startswith("/etc/rabbitmq/conf.d/")
    conf = (ROOT / "deploy/compose/rabbitmq.conf").read_text()
    assert re.search(r"^load_definitions = /etc/rabbitmq/definitions.json$", conf, re.M)
    assert rabbit["ports"] == ["127.0.0.1:15672:15672"]  # never AMQP, never all interfaces


def test_generated_definitions_hold_the_service_users_with_least_permissions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(procs, "RUN_DIR", tmp_path)
    environ = {name: f"pw-{name}" for name in GENERATED}
    data = json.loads(write_definitions(environ).read_text())
    users = {u["name"]: u for u in data["users"]}
    assert set(users) == {r.user for r in suite_broker.ROLES.values()} | {suite_broker.ADMIN_USER}
    for service, role in suite_broker.ROLES.items():
        stored = base64.b64decode(users[role.user]["password_hash"])
        salt, digest = stored[:4], stored[4:]
        assert hashlib.sha256(salt + f"pw-{BROKER_PASSWORDS[service]}".encode()).digest() == digest
        assert users[role.user]["tags"] == []
    assert users[suite_broker.ADMIN_USER]["tags"] == ["administrator"]
    topics = {t["user"]: t for t in data["topic_permissions"]}
    assert {u: (t["exchange"], t["write"]) for u, t in topics.items()} == {
        "quartet_auth": ("quartet.events", r"^user\."),
        "quartet_todos": ("quartet.events", r"^todo\."),
        "quartet_reports": ("quartet.events", r"^report\."),
        "quartet_live": ("quartet.events", "^$"),  # it publishes nothing
    }
    perms = {p["user"]: p for p in data["permissions"]}
    # auth consumes nothing: it reads only the alternate exchange (to bind quartet.events.unrouted to it)
    assert perms["quartet_auth"]["read"] == r"^(quartet\.events\.alternate)$"
    for p in perms.values():  # nobody but an operator reads the unrouted events
        assert p["user"] == suite_broker.ADMIN_USER or not re.fullmatch(p["read"], "quartet.events.unrouted")
    assert data["policies"] == [broker_policy.definition("quartet.events")]
    assert {(b["source"], b["destination"]) for b in data["bindings"]} == {
        ("quartet.events.alternate", "quartet.events.unrouted")
    }
    assert re.fullmatch(perms["quartet_todos"]["configure"], "todos.events.dlq")
    assert not re.fullmatch(perms["quartet_todos"]["configure"], "reports.events")
    assert not re.fullmatch(perms["quartet_todos"]["read"], "reports.jobs")
    # The consumers' owners are exactly these users (services/kit/config.py).
    assert {r.owns: r.user for r in suite_broker.ROLES.values() if r.owns} == DEFAULT_EVENT_PRODUCERS


def test_every_process_exports_traces_to_jaeger(services: dict[str, Any]) -> None:
    assert services["jaeger"]["image"].startswith("jaegertracing/all-in-one:")
    assert "4318:4318" in services["jaeger"]["ports"]
    for name in APP_SERVICES:
        assert services[name]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318", name


def test_prometheus_scrapes_every_process_of_the_suite_on_its_metrics_port(services: dict[str, Any]) -> None:
    mounts = services["prometheus"]["volumes"]
    assert "./deploy/prometheus/compose.yml:/etc/prometheus/prometheus.yml:ro" in mounts
    assert "./deploy/prometheus/rules.yml:/etc/prometheus/rules.yml:ro" in mounts
    config = yaml.safe_load((ROOT / "deploy/prometheus/compose.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/rules.yml"]
    scraped = {
        job["job_name"]: (sd["names"], sd["port"]) for job in config["scrape_configs"] for sd in job["dns_sd_configs"]
    }
    expected = {name: ([name], port) for name, port in HTTP_PORTS.items()}
    # The gateway's metrics are on its private listener only (the public port answers 404).
    gateway_env = services["gateway"]["environment"]
    assert gateway_env["METRICS_HOST"] == "0.0.0.0"
    expected["gateway"] = (["gateway"], int(gateway_env["METRICS_PORT"]))
    assert expected["gateway"][1] != HTTP_PORTS["gateway"]
    assert f"{gateway_env['METRICS_PORT']}" not in str(services["gateway"]["ports"])
    for name in WORKERS:
        expected[name] = ([name], int(services[name]["environment"]["WORKER_METRICS_PORT"]))
    assert scraped == expected


def test_every_registry_image_has_a_stand_in_for_machines_without_a_registry(services: dict[str, Any]) -> None:
    """make test-compose (scripts/compose_test.py) builds these where no registry answers."""
    override = yaml.safe_load((ROOT / compose_test.NO_REGISTRY_OVERRIDE).read_text())["services"]
    left_out = {name for name, svc in override.items() if svc.get("profiles")}
    assert left_out == {"jaeger"}  # the trace backend: no Debian package to stand in for it
    dockerfile_bases = [
        line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")
    ]
    images = {svc["image"] for name, svc in services.items() if "build" not in svc and name not in left_out}
    for image in images | set(dockerfile_bases):
        standin = compose_test.STANDINS[image.rsplit(":", 1)[0]]
        assert (compose_test.STANDIN_DIR / f"{standin}.Dockerfile").exists(), image
    # Every image we build is built on the host network there (the engine has no bridge of its own).
    built = {name for name, svc in services.items() if "build" in svc}
    assert {name for name, svc in override.items() if svc.get("build", {}).get("network") == "host"} == built
    for name in built:
        assert override[name]["environment"] == {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, name
