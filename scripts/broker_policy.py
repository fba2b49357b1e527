"""The RabbitMQ policy that gives the events exchange its alternate exchange (``<exchange>.alternate``).

An event no queue is bound to then lands in the durable queue ``<exchange>.unrouted``
(the kit declares the exchange and queue on every connect) instead of being
returned to the relay, which would retry it with a warning each time. A policy,
not an exchange argument: RabbitMQ refuses to redeclare an existing durable
exchange with new arguments (PRECONDITION_FAILED), while a policy applies to it
as it is, and can be changed or removed later.

    python -m scripts.broker_policy                      # set it for quartet.events (rabbitmqctl)
    python -m scripts.broker_policy --exchange X --remove
    python -m scripts.broker_policy --definitions        # the policy as RabbitMQ definitions JSON

``make up`` runs :func:`apply` (through ``suite_broker.provision``); compose and
Kubernetes load :func:`definition` with their broker definitions
(``suite_broker.definitions``).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from typing import Any

DEFAULT_EXCHANGE = "quartet.events"
# Above any broad policy an operator may add (only the highest-priority matching policy applies).
PRIORITY = 10
TIMEOUT_SECONDS = 30


def policy_name(exchange: str) -> str:
    return f"{exchange}.unrouted"


def alternate_exchange_name(exchange: str) -> str:
    """Same rules as ``services.kit.events.broker`` (scripts do not import the services)."""
    return f"{exchange}.alternate"


def unrouted_name(exchange: str) -> str:
    return f"{exchange}.unrouted"


def definition(exchange: str = DEFAULT_EXCHANGE, vhost: str = "/") -> dict[str, Any]:
    """The policy as an entry of a RabbitMQ definitions file's ``policies`` list."""
    return {
        "vhost": vhost,
        "name": policy_name(exchange),
        "pattern": f"^{re.escape(exchange)}$",
        "apply-to": "exchanges",
        "priority": PRIORITY,
        "definition": {"alternate-exchange": alternate_exchange_name(exchange)},
    }


def rabbitmqctl(*args: str) -> None:
    if shutil.which("rabbitmqctl") is None:
        raise RuntimeError("rabbitmqctl not found: set the policy on the broker by its definitions instead")
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=TIMEOUT_SECONDS)


def apply(exchange: str = DEFAULT_EXCHANGE, vhost: str = "/") -> None:
    """Set (or update) the policy on the local broker; idempotent."""
    d = definition(exchange, vhost)
    rabbitmqctl(
        "set_policy",
        "-p",
        vhost,
        "--apply-to",
        d["apply-to"],
        "--priority",
        str(d["priority"]),
        d["name"],
        d["pattern"],
        json.dumps(d["definition"]),
    )


def remove(exchange: str = DEFAULT_EXCHANGE, vhost: str = "/") -> None:
    rabbitmqctl("clear_policy", "-p", vhost, policy_name(exchange))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--exchange", default=DEFAULT_EXCHANGE)
    parser.add_argument("--vhost", default="/")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--remove", action="store_true")
    group.add_argument("--definitions", action="store_true")
    args = parser.parse_args(argv)
    if args.definitions:
        print(json.dumps({"policies": [definition(args.exchange, args.vhost)]}, indent=2))
        return 0
    try:
        (remove if args.remove else apply)(args.exchange, args.vhost)
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
