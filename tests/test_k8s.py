"""deploy/k8s: the Kubernetes manifests (kustomize) describe the whole suite (no cluster here: we parse them).

The processes, ports and modules come from the table of scripts/suite/table.py and the
settings classes of the services, so the manifests cannot drift from the code.
When kubectl is installed, the local overlay is also rendered with ``kubectl kustomize``
and every process's resolved environment is loaded into its settings class.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.config import UPSTREAM_NAMES, GatewaySettings
from scripts.suite import broker as suite_broker
from scripts.suite import table as suite_table
from services.auth.config import AuthSettings
from services.kit.config import ServiceSettings
from services.ping.config import PingSettings
from services.reports.config import ReportsSettings
from services.todos.config import TodosSettings

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
LOCAL = K8S / "overlays" / "local"

# The public contract (docs/ARCHITECTURE): the HTTP processes and their ports.
CONTRACT_PORTS = {"auth": 8001, "todos": 8002, "ping": 8003, "reports": 8004, "live": 8005, "gateway": 8080}
HTTP_PORTS = {s.name: s.port for s in (*suite_table.SERVICES, suite_table.GATEWAY)}
WORKERS = {name: extra.module for name, (_, extra) in suite_table.workers().items()}
WORKER_METRICS_PORTS = {name: extra.metrics_port for name, (_, extra) in suite_table.workers().items()}
MODULES = suite_table.modules()
# What the manifests run besides the suite's own processes.
INFRA = {"redis"}
SETTINGS: dict[str, type[ServiceSettings]] = {
    "auth": AuthSettings,
    "todos": TodosSettings,
    "ping": PingSettings,
    "reports": ReportsSettings,
    "reports-worker": ReportsSettings,
    "gateway": GatewaySettings,
}
AUTOSCALED = {"gateway", "todos", "ping", "reports-worker"}
SECRET_KEYS = {
    "AUTH_DATABASE_URL",
    "TODOS_DATABASE_URL",
    "REPORTS_DATABASE_URL",
    "REPORTS_WORKER_CLIENT_SECRET",
    "CURSOR_SECRET",
    "AUTH_AMQP_URL",
    "TODOS_AMQP_URL",
    "REPORTS_AMQP_URL",
    "LIVE_AMQP_URL",
    "SIGNING_KEK",
}
# Generated per developer into the local overlay's git-ignored secrets.env (scripts/suite/ k8s-local-secrets).
GENERATED = {
    "REPORTS_WORKER_CLIENT_SECRET",
    "CURSOR_SECRET",
    "SIGNING_KEK",
    "AUTH_AMQP_URL",
    "TODOS_AMQP_URL",
    "REPORTS_AMQP_URL",
    "LIVE_AMQP_URL",
}
PLACEHOLDER = "REPLACE_ME"
# Who reads the generated application secrets (auth seeds the worker's client with its secret).
USES_SECRET = {
    "auth": ("REPORTS_WORKER_CLIENT_SECRET", "SIGNING_KEK"),
    "reports-worker": ("REPORTS_WORKER_CLIENT_SECRET",),
    "todos": ("CURSOR_SECRET",),
}


def _docs_of(path: Path) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert all(isinstance(d, dict) for d in docs), path
    return docs


def _manifests(folder: Path) -> list[dict[str, Any]]:
    """Every Kubernetes object in the resource files ``folder``'s kustomization lists (not its patches)."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    files = [folder / entry for entry in kustomization["resources"] if (folder / entry).is_file()]
    return [d for path in files for d in _docs_of(path)]


def _find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any] | None:
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)


def _get(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = _find(docs, kind, name)
    assert found is not None, f"no {kind} {name}"
    return found


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    container: dict[str, Any] = containers[0]
    return container


def _env(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    assert named, f"no container port named {port!r}"
    return int(named[0])


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def _pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for d in docs:
        if d["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            yield f"{d['kind']}/{d['metadata']['name']}", d["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def base() -> list[dict[str, Any]]:
    return _manifests(BASE)


@pytest.fixture(scope="module")
def everything() -> list[dict[str, Any]]:
    return [d for folder in (BASE, LOCAL) for d in _manifests(folder)]


@pytest.fixture(scope="module")
def shared_env(base: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = _get(base, "ConfigMap", "quartet-config")["data"]
    return data


def test_the_contract_and_the_suite_table_agree() -> None:
    assert HTTP_PORTS == CONTRACT_PORTS
    assert WORKERS == {"reports-worker": "services.reports.worker"}
    assert WORKER_METRICS_PORTS == {"reports-worker": 9104}


def test_the_deployments_are_the_processes_of_the_table_and_nothing_else(base: list[dict[str, Any]]) -> None:
    deployments = {d["metadata"]["name"] for d in base if d["kind"] == "Deployment"}
    assert deployments - INFRA == set(MODULES)
    # A Service for each HTTP process of the table; workers have none.
    services = {d["metadata"]["name"] for d in base if d["kind"] == "Service"}
    assert services - INFRA == set(HTTP_PORTS)


@pytest.mark.parametrize("folder", [BASE, LOCAL], ids=["base", "local"])
def test_kustomization_lists_files_that_exist_and_every_manifest_is_listed(folder: Path) -> None:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    assert kustomization["namespace"] == "quartet"
    listed: set[str] = set()
    for entry in kustomization.get("resources", []):
        target = (folder / entry).resolve()
        assert target.exists(), f"{folder.name}: resource {entry} does not exist"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{entry} is not a kustomization"
        listed.add(target.name)
    for patch in kustomization.get("patches", []):
        assert (folder / patch["path"]).is_file(), patch
        listed.add(patch["path"])
    for generator in kustomization.get("configMapGenerator", []):
        for file in generator.get("files", []):
            assert (folder / file.split("=")[-1]).is_file(), file
    # secretGenerator files are generated per developer and git-ignored (checked below).
    on_disk = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk <= listed, f"manifests not in {folder.name}/kustomization.yaml: {sorted(on_disk - listed)}"


def test_every_object_is_labelled_and_in_the_namespace(
    everything: list[dict[str, Any]], base: list[dict[str, Any]]
) -> None:
    assert _find(base, "Namespace", "quartet") is not None
    for d in everything:
        meta, where = d["metadata"], f"{d['kind']}/{d['metadata']['name']}"
        assert meta.get("namespace", "quartet") == "quartet", where
        assert meta["labels"].get("app.kubernetes.io/part-of") == "quartet", where
        assert meta["labels"].get("app.kubernetes.io/name"), where
        if d["kind"] in {"Deployment", "StatefulSet"}:
            labels = d["spec"]["template"]["metadata"]["labels"]
            assert labels.get("app.kubernetes.io/part-of") == "quartet", where
            assert labels.get("app.kubernetes.io/name") == meta["labels"]["app.kubernetes.io/name"], where
            assert _selects(d["spec"]["selector"]["matchLabels"], labels), where


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_process_has_a_deployment_running_its_module(base: list[dict[str, Any]], name: str) -> None:
    container = _container(_get(base, "Deployment", name))
    assert container["command"] == ["python", "-m", MODULES[name]]
    assert container["image"] == "quartet"  # the overlay sets the tag


GATEWAY_METRICS_PORT = 9080


def test_the_gateway_metrics_port_is_scraped_in_the_pod_but_never_exposed(base: list[dict[str, Any]]) -> None:
    deployment = _get(base, "Deployment", "gateway")
    env = _env(_container(deployment))
    assert env["METRICS_PORT"]["value"] == str(GATEWAY_METRICS_PORT)
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(GATEWAY_METRICS_PORT)
    service = _get(base, "Service", "gateway")
    assert [p["port"] for p in service["spec"]["ports"]] == [8080]


@pytest.mark.parametrize("name", sorted(CONTRACT_PORTS))
def test_http_deployment_probes_and_port(base: list[dict[str, Any]], name: str) -> None:
    container = _container(_get(base, "Deployment", name))
    port = CONTRACT_PORTS[name]
    # The gateway also has its private metrics listener (docs/gateway.md); nothing else does.
    private = [GATEWAY_METRICS_PORT] if name == "gateway" else []
    assert [p["containerPort"] for p in container["ports"]] == [port, *private]
    assert _env(container)["PORT"]["value"] == str(port)
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        http = container[probe]["httpGet"]
        assert http["path"] == path, probe
        assert _port_number(container, http["port"]) == port, probe
    startup = container["startupProbe"]["httpGet"]
    assert _port_number(container, startup["port"]) == port
    # The start may migrate and wait for the database (DB_STARTUP_TIMEOUT_SECONDS, 30 s).
    s = container["startupProbe"]
    assert s["periodSeconds"] * s["failureThreshold"] > 30


@pytest.mark.parametrize("name", sorted(CONTRACT_PORTS))
def test_http_service_has_a_service_and_a_pdb(base: list[dict[str, Any]], name: str) -> None:
    deployment = _get(base, "Deployment", name)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = _get(base, "Service", name)
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert _selects(service["spec"]["selector"], pod_labels)
    [port] = service["spec"]["ports"]
    assert port["port"] == CONTRACT_PORTS[name]
    assert _port_number(_container(deployment), port["targetPort"]) == CONTRACT_PORTS[name]
    pdb = _get(base, "PodDisruptionBudget", name)
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["spec"]["minAvailable"] == 1
    assert _selects(pdb["spec"]["selector"]["matchLabels"], pod_labels)
    # minAvailable 1 with a single pod would block every node drain.
    hpa = _find(base, "HorizontalPodAutoscaler", name)
    least = hpa["spec"]["minReplicas"] if hpa else deployment["spec"].get("replicas", 1)
    assert least >= 2


def test_workers_have_no_service(base: list[dict[str, Any]]) -> None:
    for name in WORKERS:
        assert _find(base, "Service", name) is None
        # The one port of a worker is its Prometheus metrics (WORKER_METRICS_PORT), for scrapes only.
        container = _container(_get(base, "Deployment", name))
        assert [p["name"] for p in container["ports"]] == ["metrics"]
        assert container["ports"][0]["containerPort"] == WORKER_METRICS_PORTS[name]
        assert _env(container)["WORKER_METRICS_PORT"]["value"] == str(WORKER_METRICS_PORTS[name])


def test_hpas_target_existing_deployments_on_cpu(base: list[dict[str, Any]]) -> None:
    hpas = {d["metadata"]["name"]: d for d in base if d["kind"] == "HorizontalPodAutoscaler"}
    assert set(hpas) == AUTOSCALED
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["apiVersion"] == "apps/v1"
        deployment = _get(base, "Deployment", target["name"])
        assert "replicas" not in deployment["spec"], f"{name}: the HPA owns replicas"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        [metric] = hpa["spec"]["metrics"]
        assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
        # Utilization is relative to the request: without one the HPA cannot scale.
        assert _container(deployment)["resources"]["requests"]["cpu"]


# PostgreSQL's default max_connections, less its superuser reserve (3) and room for
# migrations, psql and a rolling update's extra connections.
POSTGRES_MAX_CONNECTIONS = 100
CONNECTION_BUDGET = POSTGRES_MAX_CONNECTIONS - 3 - 10


def _max_pods(base: list[dict[str, Any]], deployment: dict[str, Any]) -> int:
    """Pods a Deployment can have at once: the HPA maximum (or replicas) plus its rolling-update surge."""
    name = deployment["metadata"]["name"]
    hpa = _find(base, "HorizontalPodAutoscaler", name)
    replicas = int(hpa["spec"]["maxReplicas"]) if hpa else int(deployment["spec"].get("replicas", 1))
    surge = deployment["spec"].get("strategy", {}).get("rollingUpdate", {}).get("maxSurge", "25%")
    extra = -(-replicas * int(surge[:-1]) // 100) if isinstance(surge, str) else int(surge)
    return replicas + extra


def test_every_pool_full_at_the_autoscaler_maxima_stays_within_postgres_connections(
    base: list[dict[str, Any]],
) -> None:
    worst = 0
    lines = []
    for deployment in (d for d in base if d["kind"] == "Deployment"):
        env = _env(_container(deployment))
        if "DATABASE_URL" not in env:
            continue
        name = deployment["metadata"]["name"]
        pool = int(env["DB_POOL_MAX"]["value"]) if "DB_POOL_MAX" in env else SETTINGS[name]().db_pool_max
        pods = _max_pods(base, deployment)
        worst += pods * pool
        lines.append(f"{name}: {pods} pods x {pool}")
    print(f"worst case {worst} connections ({', '.join(lines)}) against a budget of {CONNECTION_BUDGET}")
    assert worst <= CONNECTION_BUDGET


def test_security_context_everywhere(everything: list[dict[str, Any]]) -> None:
    uid = int(re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1))  # type: ignore[union-attr]
    pods = list(_pod_specs(everything))
    assert len(pods) >= 9
    for where, spec in pods:
        pod = spec.get("securityContext", {})
        assert spec.get("automountServiceAccountToken") is False, where
        for container in spec["containers"] + spec.get("initContainers", []):
            sc = {**pod, **container.get("securityContext", {})}
            assert sc.get("runAsNonRoot") is True, where
            # The image's user is a name: the kubelet verifies non-root only with a numeric uid.
            assert isinstance(sc.get("runAsUser"), int) and sc["runAsUser"] > 0, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert "add" not in sc.get("capabilities", {}), where
            assert not sc.get("privileged", False), where
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{where} {kind}"
            if container["image"].startswith("quartet"):
                assert sc["runAsUser"] == uid, where
                assert sc.get("readOnlyRootFilesystem") is True, where


def test_grace_period_covers_drain_and_shutdown(base: list[dict[str, Any]], shared_env: dict[str, str]) -> None:
    drain = float(shared_env["DRAIN_DELAY_SECONDS"])
    grace = float(
        shared_env.get("SHUTDOWN_GRACE_SECONDS", ServiceSettings.model_fields["shutdown_grace_seconds"].default)
    )
    assert drain > 0
    for name in MODULES:
        spec = _get(base, "Deployment", name)["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] > grace + drain, name
        assert _get(base, "Deployment", name)["spec"].get("strategy", {}).get("rollingUpdate", {}).get(
            "maxUnavailable", 1
        ) in (0, "0%"), name


def test_shared_config(shared_env: dict[str, str]) -> None:
    assert {"REGION", "LOG_LEVEL", "AUTH_URL", "EVENTS_EXCHANGE", "HOST"} <= set(shared_env)
    assert shared_env["HOST"] == "0.0.0.0"
    auth = urlsplit(shared_env["AUTH_URL"])
    assert (auth.hostname, auth.port) == ("auth", CONTRACT_PORTS["auth"])


def test_secret_template_holds_only_placeholders(base: list[dict[str, Any]]) -> None:
    secret = _get(base, "Secret", "quartet-secrets")
    assert "data" not in secret  # base64 would hide what is in it
    assert set(secret["stringData"]) == SECRET_KEYS
    for key, value in secret["stringData"].items():
        assert PLACEHOLDER in value, f"{key} is not a placeholder"
    # Every key a workload reads exists.
    for _, spec in _pod_specs(base):
        for container in spec["containers"]:
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "quartet-secrets" and ref["key"] in SECRET_KEYS, entry


def test_local_secret_is_only_the_public_dev_defaults_and_generated_app_secrets() -> None:
    """The dev overlay commits only compose's public dev URLs; the application secrets are
    generated per developer into a git-ignored file (auth refuses its built-in default there)."""
    generated = GENERATED
    secret = _get(_docs_of(LOCAL / "secret-dev.yaml"), "Secret", "quartet-secrets")
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    public = {v for svc in compose["services"].values() for v in (svc.get("environment") or {}).values()}
    public |= set(compose["x-env"].values())
    assert set(secret["stringData"]) == SECRET_KEYS - generated
    for key, value in secret["stringData"].items():
        assert value in public, f"{key}: not a development default already public in the repo"
    kustomization = yaml.safe_load((LOCAL / "kustomization.yaml").read_text())
    generators = {g["name"]: g for g in kustomization["secretGenerator"]}
    generator = generators["quartet-secrets"]
    assert generator["behavior"] == "merge"
    assert generator["options"]["disableNameSuffixHash"] is True  # the Deployments name it as is
    ignored = (LOCAL / ".gitignore").read_text().split()
    assert generator["envs"] and all(env in ignored for env in generator["envs"])
    assert generators["rabbitmq-definitions"]["files"] == ["rabbitmq-definitions.json"]
    assert "rabbitmq-definitions.json" in ignored


def test_local_postgres_init_is_the_compose_one() -> None:
    assert (LOCAL / "postgres-init.sql").read_text() == (ROOT / "deploy/compose/postgres-init.sql").read_text()


def test_gateway_lists_every_upstream(base: list[dict[str, Any]]) -> None:
    env = _env(_container(_get(base, "Deployment", "gateway")))
    # The gateway's upstreams are the services of the table, each at its Service.
    assert set(UPSTREAM_NAMES) == {s.name for s in suite_table.SERVICES}
    assert {name for name in env if name.endswith("_URLS")} == {s.urls_setting for s in suite_table.SERVICES}
    for upstream in UPSTREAM_NAMES:
        urls = env[f"{upstream.upper()}_URLS"]["value"].split(",")
        assert len(urls) == 1, "one Service URL per upstream: kube-proxy balances over the pods"
        url = urlsplit(urls[0])
        assert url.scheme == "http"
        service = _get(base, "Service", url.hostname or "")
        assert url.port == CONTRACT_PORTS[upstream] == service["spec"]["ports"][0]["port"]
    # More than one gateway: the rate-limit buckets must be shared.
    assert _get(base, "HorizontalPodAutoscaler", "gateway")["spec"]["maxReplicas"] > 1
    redis = urlsplit(env["REDIS_URL"]["value"])
    assert redis.scheme == "redis"
    assert _get(base, "Service", redis.hostname or "")["spec"]["ports"][0]["port"] == redis.port


def test_auth_trusts_only_the_pod_network_and_is_not_exposed(base: list[dict[str, Any]]) -> None:
    ref = _env(_container(_get(base, "Deployment", "auth")))["TRUSTED_PROXIES"]["valueFrom"]["configMapKeyRef"]
    cidr = _get(base, "ConfigMap", ref["name"])["data"][ref["key"]]
    network = ipaddress.ip_network(cidr)
    assert network.is_private and network.prefixlen >= 8
    for ingress in (d for d in base if d["kind"] == "Ingress"):
        for rule in ingress["spec"]["rules"]:
            backends = {p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
            assert backends == {"gateway"}
    for service in (d for d in base if d["kind"] == "Service"):
        assert service["spec"].get("type", "ClusterIP") == "ClusterIP", service["metadata"]["name"]
    policy = _get(base, "NetworkPolicy", "auth")
    pod_labels = _get(base, "Deployment", "auth")["spec"]["template"]["metadata"]["labels"]
    assert _selects(policy["spec"]["podSelector"]["matchLabels"], pod_labels)
    assert policy["spec"]["ingress"], "an empty ingress list would also block the gateway"


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_every_env_var_is_a_setting_of_that_process(
    base: list[dict[str, Any]], shared_env: dict[str, str], name: str
) -> None:
    fields = set(SETTINGS[name].model_fields)
    for var in [*shared_env, *_env(_container(_get(base, "Deployment", name)))]:
        assert var.lower() in fields, f"{name}: {var} is not a setting of {SETTINGS[name].__name__}"


def _resolve_env(docs: list[dict[str, Any]], container: dict[str, Any], pod: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env |= _get(docs, "ConfigMap", source["configMapRef"]["name"])["data"]
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]
        if "fieldRef" in ref:
            env[entry["name"]] = pod
        elif "configMapKeyRef" in ref:
            env[entry["name"]] = _get(docs, "ConfigMap", ref["configMapKeyRef"]["name"])["data"][
                ref["configMapKeyRef"]["key"]
            ]
        else:
            secret = _get(docs, "Secret", ref["secretKeyRef"]["name"])
            values = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}
            values |= secret.get("stringData", {})
            env[entry["name"]] = values[ref["secretKeyRef"]["key"]]
    return env


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_local_overlay_renders_and_every_process_accepts_its_environment(tmp_path: Path) -> None:
    # A copy, with the secrets.env a developer generates (docs/kubernetes.md).
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = tmp_path / "k8s" / "overlays" / "local"
    suite_broker.write_k8s_local(overlay, "quartet.events")
    secrets = dict(line.split("=", 1) for line in (overlay / "secrets.env").read_text().splitlines())
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    assert all(d["metadata"].get("namespace", "quartet") == "quartet" for d in docs)
    assert PLACEHOLDER not in out
    for name, settings_type in SETTINGS.items():
        container = _container(_get(docs, "Deployment", name))
        assert container["image"] == "quartet:dev"
        env = _resolve_env(docs, container, f"{name}-pod")
        assert len(container["env"]) == len({e["name"] for e in container["env"]}), f"{name}: duplicate env"
        fields: dict[str, Any] = {k.lower(): v for k, v in env.items()}
        settings = settings_type(**fields)
        for key in USES_SECRET.get(name, ()):
            assert getattr(settings, key.lower()).get_secret_value() == secrets[key], f"{name}: {key}"
        if name in CONTRACT_PORTS:
            assert settings.port == CONTRACT_PORTS[name]
        assert settings.host == "0.0.0.0"
        assert settings.drain_delay_seconds > 0
    for name in ("postgres", "rabbitmq"):
        _get(docs, "StatefulSet", name)
        _get(docs, "Service", name)


# --- the broker (issue 15): each service its own user; the dev broker has no guest -------------


def test_each_broker_service_reads_its_own_amqp_url(base: list[dict[str, Any]]) -> None:
    secret = _get(base, "Secret", "quartet-secrets")["stringData"]
    for name, role in suite_broker.ROLE_OF.items():
        ref = _env(_container(_get(base, "Deployment", name)))["AMQP_URL"]["valueFrom"]["secretKeyRef"]
        assert ref["key"] == f"{role.upper()}_AMQP_URL", name
        assert urlsplit(secret[ref["key"]]).username == suite_broker.ROLES[role].user, name
    for name in set(SETTINGS) - set(suite_broker.ROLE_OF):  # ping and the gateway never touch the broker
        assert "AMQP_URL" not in _env(_container(_get(base, "Deployment", name))), name


def test_local_broker_loads_the_generated_definitions(tmp_path: Path) -> None:
    assert (LOCAL / "rabbitmq.conf").read_text() == (ROOT / "deploy/compose/rabbitmq.conf").read_text()
    pod = _get(_docs_of(LOCAL / "rabbitmq.yaml"), "StatefulSet", "rabbitmq")["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m for m in pod["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    definitions = mounts["/etc/rabbitmq/definitions.json"]
    assert volumes[definitions["name"]]["secret"]["secretName"] == "rabbitmq-definitions"
    config = mounts["/etc/rabbitmq/conf.d/20-quartet.conf"]
    assert volumes[config["name"]]["configMap"]["name"] == "rabbitmq-config"
    assert "guest" not in (LOCAL / "rabbitmq.yaml").read_text()
    # The generator: passwords in the URLs match the definitions; a second run keeps them.
    first = suite_broker.write_k8s_local(tmp_path, "quartet.events")
    env_before = first[0].read_text()
    suite_broker.write_k8s_local(tmp_path, "quartet.events")
    assert first[0].read_text() == env_before
    users = {u["name"]: u for u in json.loads(first[1].read_text())["users"]}
    for line in env_before.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("_AMQP_URL"):
            url = urlsplit(value)
            stored = base64.b64decode(users[url.username or ""]["password_hash"])
            assert hashlib.sha256(stored[:4] + (url.password or "").encode()).digest() == stored[4:], key


def test_local_overlay_has_jaeger_and_prometheus_scraping_every_process(everything: list[dict[str, Any]]) -> None:
    assert (LOCAL / "prometheus-rules.yml").read_text() == (ROOT / "deploy/prometheus/rules.yml").read_text()
    _get(everything, "Deployment", "jaeger")
    _get(everything, "Deployment", "prometheus")
    patch = yaml.safe_load_all((LOCAL / "config-local.yaml").read_text())
    local_config = next(d for d in patch if d["metadata"]["name"] == "quartet-config")
    assert local_config["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"
    config = yaml.safe_load((LOCAL / "prometheus.yml").read_text())
    scraped = {job["job_name"]: job["dns_sd_configs"][0] for job in config["scrape_configs"]}
    ports = {**HTTP_PORTS, **WORKER_METRICS_PORTS}
    assert set(scraped) == set(MODULES)
    for name, sd in scraped.items():
        assert sd == {"names": [f"{name}-metrics.quartet.svc"], "type": "A", "port": ports[name]}, name
        headless = _get(everything, "Service", f"{name}-metrics")
        assert headless["spec"]["clusterIP"] == "None"
        assert headless["spec"]["selector"] == {"app.kubernetes.io/name": name}
        assert headless["spec"]["ports"][0]["port"] == ports[name]


# --- the report worker scales on its queue (issue 20): KEDA where installed, CPU otherwise ------

KEDA = K8S / "components" / "keda-worker"


def _keda_objects() -> tuple[dict[str, Any], dict[str, Any]]:
    docs = _docs_of(KEDA / "scaledobject.yaml")
    return _get(docs, "ScaledObject", "reports-worker"), _get(docs, "TriggerAuthentication", "reports-worker-broker")


def test_the_keda_component_replaces_the_worker_cpu_hpa_and_the_local_overlay_uses_it() -> None:
    component = yaml.safe_load((KEDA / "kustomization.yaml").read_text())
    assert component["kind"] == "Component"
    assert component["resources"] == ["scaledobject.yaml"]
    deleted = [_docs_of(KEDA / patch["path"])[0] for patch in component["patches"]]
    assert deleted == [
        {
            "$patch": "delete",
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "reports-worker"},
        }
    ]
    local = yaml.safe_load((LOCAL / "kustomization.yaml").read_text())
    assert local["components"] == ["../../components/keda-worker"]
    # Without the component (a cluster without KEDA) the base keeps the worker's CPU HPA.
    assert (
        _get(_manifests(BASE), "HorizontalPodAutoscaler", "reports-worker")["spec"]["metrics"][0]["resource"]["name"]
        == "cpu"
    )


def test_the_scaled_object_watches_the_report_jobs_queue_as_the_reports_user(base: list[dict[str, Any]]) -> None:
    scaled, auth = _keda_objects()
    assert scaled["apiVersion"] == auth["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    worker = _get(base, "Deployment", "reports-worker")
    assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "reports-worker"}
    triggers = {t["type"]: t for t in spec["triggers"]}
    assert set(triggers) == {"rabbitmq", "cpu"}
    rabbitmq = triggers["rabbitmq"]
    # The queue the worker consumes, as the code names it.
    assert rabbitmq["metadata"]["queueName"] == ReportsSettings().jobs_queue == "reports.jobs"
    assert rabbitmq["metadata"]["mode"] == "QueueLength"
    assert rabbitmq["metadata"]["protocol"] == "amqp"
    assert int(rabbitmq["metadata"]["value"]) >= 1
    # Its broker URL is the worker's own (the reports user, which declares that queue).
    assert rabbitmq["authenticationRef"] == {"name": auth["metadata"]["name"]}
    worker_amqp = _env(_container(worker))["AMQP_URL"]["valueFrom"]["secretKeyRef"]
    assert auth["spec"]["secretTargetRef"] == [{"parameter": "host", **worker_amqp}]
    # CPU stays a trigger, and the bounds are the CPU HPA's: the PostgreSQL budget above holds either way.
    hpa = _get(base, "HorizontalPodAutoscaler", "reports-worker")["spec"]
    assert triggers["cpu"] == {
        "type": "cpu",
        "metricType": "Utilization",
        "metadata": {"value": str(hpa["metrics"][0]["resource"]["target"]["averageUtilization"])},
    }
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (hpa["minReplicas"], hpa["maxReplicas"])
    assert spec["advanced"]["horizontalPodAutoscalerConfig"] == {"name": "reports-worker", "behavior": hpa["behavior"]}
    assert _container(worker)["resources"]["requests"]["cpu"]  # KEDA's cpu trigger needs a request


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl not installed")
def test_the_rendered_local_overlay_holds_the_worker_scaled_object_and_no_cpu_hpa_for_it(tmp_path: Path) -> None:
    shutil.copytree(K8S, tmp_path / "k8s")
    overlay = tmp_path / "k8s" / "overlays" / "local"
    suite_broker.write_k8s_local(overlay, "quartet.events")
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlay)], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    scaled = _get(docs, "ScaledObject", "reports-worker")
    assert scaled["metadata"]["namespace"] == "quartet"
    assert scaled["spec"]["scaleTargetRef"]["name"] == _get(docs, "Deployment", "reports-worker")["metadata"]["name"]
    assert _find(docs, "HorizontalPodAutoscaler", "reports-worker") is None
    assert {d["metadata"]["name"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"} == AUTOSCALED - {
        "reports-worker"
    }
    # KEDA's operator runs in its own namespace: the URL it reads names the broker's Service fully,
    # and is the one the worker itself uses.
    auth = _get(docs, "TriggerAuthentication", "reports-worker-broker")
    ref = auth["spec"]["secretTargetRef"][0]
    secret = _get(docs, "Secret", ref["name"])
    values = {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()} | secret.get("stringData", {})
    url = urlsplit(values[ref["key"]])
    broker = _get(docs, "Service", "rabbitmq")
    assert url.hostname == f"{broker['metadata']['name']}.{broker['metadata']['namespace']}.svc"
    assert url.port == next(p["port"] for p in broker["spec"]["ports"] if p["name"] == "amqp")
    assert url.username == suite_broker.ROLES["reports"].user
    worker_env = _resolve_env(docs, _container(_get(docs, "Deployment", "reports-worker")), "reports-worker-pod")
    assert worker_env["AMQP_URL"] == values[ref["key"]]
