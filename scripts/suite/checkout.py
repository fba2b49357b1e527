"""Names of this checkout's local state, so that checkouts on one machine never share it.

PostgreSQL and RabbitMQ are the machine's; every checkout (a clone, a second clone, a
git worktree) gets its own databases, roles, broker vhost and broker users, named with
a short hash of the checkout's absolute path: ``quartet_todos_1a2b3c4d`` (database and
role), ``quartet_todos_1a2b3c4d`` (broker user), vhost ``quartet-1a2b3c4d``. Its secrets
live in its own ``.run/secrets.env``, so what one checkout seals or sets is never read
by another. A re-clone at the same path gets the same names but new secrets: ``make up``
recovers what the old secrets sealed (up.py, :func:`~scripts.suite.up.recover_signing_keys`).

``QUARTET_CHECKOUT_ID`` overrides the hash; set empty, it gives the shared names of
before (``quartet_todos``, vhost ``/``). Standard library only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from scripts.suite.procs import ROOT

ID_LENGTH = 8
_ID = re.compile(r"^[a-z0-9]{0,16}$")


def checkout_id(environ: Mapping[str, str]) -> str:
    """A short id of this checkout: the first 8 hex digits of SHA-256 of its absolute path."""
    if "QUARTET_CHECKOUT_ID" in environ:
        value = environ["QUARTET_CHECKOUT_ID"].strip().lower()
        if not _ID.match(value):
            raise SystemExit("QUARTET_CHECKOUT_ID must be up to 16 lowercase letters and digits (or empty)")
        return value
    return hashlib.sha256(str(ROOT).encode()).hexdigest()[:ID_LENGTH]


def suffixed(base: str, environ: Mapping[str, str]) -> str:
    """``base`` with this checkout's id: ``quartet_todos`` → ``quartet_todos_1a2b3c4d``."""
    cid = checkout_id(environ)
    return f"{base}_{cid}" if cid else base


def database_name(service: str, environ: Mapping[str, str]) -> str:
    """The database (and its owner role) of ``service`` for this checkout."""
    return suffixed(f"quartet_{service.replace('-', '_')}", environ)


def broker_user(user: str, environ: Mapping[str, str]) -> str:
    """A broker user of the table (``quartet_todos``) as this checkout names it."""
    return suffixed(user, environ)


def vhost(environ: Mapping[str, str]) -> str:
    """This checkout's RabbitMQ virtual host (its exchanges, queues and permissions)."""
    cid = checkout_id(environ)
    return f"quartet-{cid}" if cid else "/"
