"""``python -m services.kit.events dlq --service todos [--replay] [--limit N]``.

Prints one JSON line per dead letter (message id, type, reason, error, attempts,
failed_at, body) and a summary line. Reads ``AMQP_URL`` from the environment.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from services.kit.config import ServiceSettings
from services.kit.events import dlq


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m services.kit.events", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    dead = commands.add_parser("dlq", help="list (or replay) a service's dead-letter queue")
    dead.add_argument("--service", required=True, help="service name, e.g. todos")
    dead.add_argument("--replay", action="store_true", help="move the messages back to <service>.events")
    dead.add_argument("--limit", type=int, default=1000, help="at most this many messages (default 1000)")
    return parser


def _emit(entry: dict[str, Any]) -> None:
    print(json.dumps(entry, default=str), flush=True)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = ServiceSettings(service_name=args.service)
    try:
        count = asyncio.run(
            dlq.run(
                settings.amqp_url,
                settings.broker_user,
                settings.events_queue_name_prefix,
                replay=args.replay,
                limit=max(args.limit, 0),
                emit=_emit,
            )
        )
    except dlq.NoSuchQueue as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    action = "replayed" if args.replay else "dead letters"
    print(json.dumps({"service": args.service, action.replace(" ", "_"): count}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
