"""RabbitMQ users of the suite: one per service, with the least permissions it needs.

The one place the broker permissions are written down. ``make up`` creates the users
on a local broker with ``rabbitmqctl`` (:func:`provision`), compose loads them from a
definitions file (:func:`definitions`, written by ``python -m scripts.suite secrets``), the
tests create users with unique names from the same :func:`permissions`, and
docs/security.md shows the commands for a broker of your own.

Per service (exchange ``E``, queues ``<service>.*``):

- configure: ``E`` and its own queues (declares them);
- write: ``E`` (publishes events), ``amq.default`` and its own queues (retry and
  dead-letter copies go through the default exchange; binding needs write on the queue);
- read: ``E`` (binding) and its own queues (consuming);
- topic permissions on ``E``: publish only routing keys ``<owned prefix>.*``; bind
  only to the types it consumes;
- every service declares ``E.alternate`` (the alternate exchange, set by the policy of
  ``broker_policy.py``) and binds the queue ``E.unrouted`` to it: configure on both,
  write on the queue, read on the exchange. No one may read the unrouted queue (an
  operator does). Publishing needs no permission on the alternate exchange.

Standard library only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from scripts import broker_policy

VHOST = "/"
HASHING = "rabbit_password_hashing_sha256"


@dataclass(frozen=True)
class Role:
    """What one service does on the broker."""

    user: str  # the broker username (settings.events_producers names it as the owner of `owns`)
    owns: str | None  # the event type prefix it alone may publish: "user" for user.*; None: publishes none
    binds: tuple[str, ...] = ()  # type prefixes its queues are bound to
    queues: bool = False  # declares and consumes queues named <service>.*


# Keep the users in step with DEFAULT_EVENT_PRODUCERS of services/kit/config.py (tests check it).
ROLES: dict[str, Role] = {
    "auth": Role("quartet_auth", owns="user"),
    "todos": Role("quartet_todos", owns="todo", binds=("user",), queues=True),
    # The reports worker shares the service's user: it consumes report.requested from reports.jobs.
    "reports": Role("quartet_reports", owns="report", binds=("todo", "user", "report"), queues=True),
    "live": Role("quartet_live", owns=None, binds=("todo", "user", "report"), queues=True),
}
# Which services run with which role's user (workers share their service's).
ROLE_OF = {"auth": "auth", "todos": "todos", "reports": "reports", "reports-worker": "reports", "live": "live"}
ADMIN_USER = "quartet_admin"  # compose only: the management UI (127.0.0.1:15672)


@dataclass(frozen=True)
class Permissions:
    configure: str
    write: str
    read: str
    topic_write: str
    topic_read: str


def _alternatives(names: Iterable[str]) -> str:
    return "^(" + "|".join(names) + ")$"


def permissions(role: Role, exchange: str, queue_prefix: str) -> Permissions:
    """The regexes of ``role`` on the events ``exchange``, its queues named ``<queue_prefix>.*``."""
    ex = re.escape(exchange)
    alternate = re.escape(broker_policy.alternate_exchange_name(exchange))
    unrouted = re.escape(broker_policy.unrouted_name(exchange))
    queues = [f"{re.escape(queue_prefix)}\\..+"] if role.queues else []
    default = ["amq\\.default"] if role.queues else []
    topic_read = "^(" + "|".join(re.escape(p) for p in role.binds) + ")\\." if role.binds else "^$"
    return Permissions(
        configure=_alternatives([ex, alternate, unrouted, *queues]),
        write=_alternatives([ex, unrouted, *default, *queues]),
        read=_alternatives([ex, alternate, *queues]) if role.queues else _alternatives([alternate]),
        topic_write=f"^{re.escape(role.owns)}\\." if role.owns else "^$",
        topic_read=topic_read,
    )


def new_password() -> str:
    return secrets.token_urlsafe(32)  # URL-safe: goes into AMQP_URL as is


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's salted SHA-256 (``rabbit_password_hashing_sha256``), for definitions files."""
    salt = salt if salt is not None else secrets.token_bytes(4)
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(passwords: dict[str, str], exchange: str, admin_password: str) -> dict[str, object]:
    """A definitions file (loaded at boot) with the users of ``passwords`` (service -> password)
    and an administrator for the management UI; no guest."""
    entries = [{"name": ADMIN_USER, "password_hash": password_hash(admin_password), "tags": ["administrator"]}]
    perms = [{"user": ADMIN_USER, "vhost": VHOST, "configure": ".*", "write": ".*", "read": ".*"}]
    topics = []
    for service, password in passwords.items():
        role = ROLES[service]
        p = permissions(role, exchange, service)
        entries.append({"name": role.user, "password_hash": password_hash(password), "tags": []})
        perms.append({"user": role.user, "vhost": VHOST, "configure": p.configure, "write": p.write, "read": p.read})
        topics.append(
            {"user": role.user, "vhost": VHOST, "exchange": exchange, "write": p.topic_write, "read": p.topic_read}
        )
    for entry in entries:
        entry["hashing_algorithm"] = HASHING
    return {
        "users": entries,
        "vhosts": [{"name": VHOST}],
        "permissions": perms,
        "topic_permissions": topics,
        "exchanges": [
            {
                "name": name,
                "vhost": VHOST,
                "type": kind,
                "durable": True,
                "auto_delete": False,
                "internal": False,
                "arguments": {},
            }
            for name, kind in ((exchange, "topic"), (broker_policy.alternate_exchange_name(exchange), "fanout"))
        ],
        # Events nobody consumes: kept in E.unrouted (the services declare the same on connect).
        "queues": [
            {
                "name": broker_policy.unrouted_name(exchange),
                "vhost": VHOST,
                "durable": True,
                "auto_delete": False,
                "arguments": {},
            }
        ],
        "bindings": [
            {
                "source": broker_policy.alternate_exchange_name(exchange),
                "vhost": VHOST,
                "destination": broker_policy.unrouted_name(exchange),
                "destination_type": "queue",
                "routing_key": "",
                "arguments": {},
            }
        ],
        "policies": [broker_policy.definition(exchange, VHOST)],
    }


# The dev broker of the local Kubernetes overlay: its Service, in the overlay's namespace.
K8S_LOCAL_BROKER_HOST = "rabbitmq.quartet.svc"


def write_k8s_local(folder: Path, exchange: str) -> list[Path]:
    """The git-ignored files of the local Kubernetes overlay: ``secrets.env`` (kept values stay)
    and ``rabbitmq-definitions.json`` (regenerated from the passwords in ``secrets.env``)."""
    env_path = folder / "secrets.env"
    values: dict[str, str] = {}
    if env_path.is_file():
        for line in env_path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.lstrip().startswith("#"):
                values[key.strip()] = value.strip()
    for key in ("REPORTS_WORKER_CLIENT_SECRET", "CURSOR_SECRET"):
        values.setdefault(key, secrets.token_hex(32))
    values.setdefault("SIGNING_KEK", secrets.token_urlsafe(32))  # base64 of 32 bytes: seals auth's keys
    passwords: dict[str, str] = {}
    for service, role in ROLES.items():
        key = f"{service.upper()}_AMQP_URL"
        url = urlsplit(values.get(key, ""))
        password = url.password if url.username == role.user and url.password else new_password()
        # The namespace-qualified name: KEDA's operator, in its own namespace, reads the reports
        # URL to watch the jobs queue (deploy/k8s/components/keda-worker); a kept password stays.
        values[key] = f"amqp://{role.user}:{password}@{K8S_LOCAL_BROKER_HOST}:5672/"
        passwords[service] = password
    values.setdefault("RABBITMQ_ADMIN_PASSWORD", new_password())
    env_path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    env_path.chmod(0o600)
    data = definitions(passwords, exchange, values.pop("RABBITMQ_ADMIN_PASSWORD"))
    definitions_path = folder / "rabbitmq-definitions.json"
    definitions_path.write_text(json.dumps(data, indent=2) + "\n")
    definitions_path.chmod(0o600)
    return [env_path, definitions_path]


# ----------------------------------------------------------------------- rabbitmqctl


class BrokerAdminError(Exception):
    """rabbitmqctl is missing or refused."""


def _ctl(args: Sequence[str], stdin: str | None = None, timeout: float = 60) -> str:
    if shutil.which("rabbitmqctl") is None:
        raise BrokerAdminError("rabbitmqctl is not installed (needed to create the broker users)")
    try:
        done = subprocess.run(
            ["rabbitmqctl", *args], input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        raise BrokerAdminError(f"rabbitmqctl {args[0]} took over {timeout:.0f}s") from None
    if done.returncode != 0:
        raise BrokerAdminError(f"rabbitmqctl {args[0]} failed: {(done.stderr or done.stdout).strip()[-500:]}")
    return done.stdout


def existing_users() -> set[str]:
    return {entry["user"] for entry in json.loads(_ctl(["list_users", "-q", "--formatter", "json"]) or "[]")}


def put_user(
    user: str, password: str, perms: Permissions, exchange: str, *, exists: bool | None = None, vhost: str = VHOST
) -> None:
    """Create ``user`` (or reset its password) and set its permissions on ``vhost``; the password goes by stdin."""
    if exists is None:
        exists = user in existing_users()
    if exists:
        _ctl(["change_password", user], stdin=password + "\n")
    else:
        _ctl(["add_user", user], stdin=password + "\n")
    _ctl(["set_permissions", "-p", vhost, user, perms.configure, perms.write, perms.read])
    _ctl(["set_topic_permissions", "-p", vhost, user, exchange, perms.topic_write, perms.topic_read])


def delete_user(user: str) -> None:
    _ctl(["delete_user", user])


def existing_vhosts() -> set[str]:
    return {entry["name"] for entry in json.loads(_ctl(["list_vhosts", "-q", "--formatter", "json"]) or "[]")}


def provision(
    passwords: dict[str, str], exchange: str, vhost: str = VHOST, user_of: Callable[[str], str] = str
) -> list[str]:
    """Create or update the user of each service in ``passwords`` on the local broker (idempotent).

    ``vhost`` is created when missing; ``user_of`` names a role's user for this checkout
    (scripts/suite/checkout.py). An existing user gets this checkout's password. Returns
    the user names.
    """
    if vhost not in existing_vhosts():
        _ctl(["add_vhost", vhost])
    present = existing_users()
    names = []
    for service, password in passwords.items():
        role = ROLES[service]
        user = user_of(role.user)
        put_user(user, password, permissions(role, exchange, service), exchange, exists=user in present, vhost=vhost)
        names.append(user)
    try:
        broker_policy.apply(exchange, vhost)  # events nobody consumes are kept in E.unrouted
    except (RuntimeError, subprocess.SubprocessError) as exc:
        raise BrokerAdminError(f"alternate-exchange policy: {exc}") from None
    return names


def forget(users: Iterable[str], vhost: str) -> list[str]:
    """Delete ``users`` and ``vhost`` (with its exchanges and queues) where they exist; never ``/``."""
    present = existing_users()
    removed = []
    for user in users:
        if user in present:
            delete_user(user)
            removed.append(f"broker user {user}")
    if vhost != VHOST and vhost in existing_vhosts():
        _ctl(["delete_vhost", vhost])
        removed.append(f"vhost {vhost}")
    return removed
