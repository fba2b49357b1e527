"""Retry policy: when a failed attempt may be made again on another instance.

The gateway tries a request at most twice, and a second time only when the first
attempt provably did no harm, or a second execution cannot:

- **never sent**: the connection to the instance was refused or did not open in
  time. Nothing reached the instance, so any method is tried elsewhere (the body is
  buffered: see :mod:`gateway.bodies`).
- **dropped before the answer**: the instance closed or reset the connection before
  the head of its answer arrived, or cut a small answer the gateway had not relayed
  yet. The handler may have run, so only requests a second execution cannot harm are
  sent again: the safe methods (GET, HEAD, OPTIONS), and a POST that carries an
  ``Idempotency-Key`` on a route whose service replays the first answer for it
  (todos). A DELETE, PUT, PATCH or key-less POST is never replayed: its client gets
  502 and decides (a replayed DELETE would answer 404 for something it deleted).
- **timed out** after it was sent: not retried; the route's deadline is spent and the
  first attempt may still be running.

On another instance, or on the same one over a fresh connection when it is the only
one (a connection it idle-closed is the common case there); never when the only
instance could not be reached at all.

The proxy's client (:mod:`gateway.upstream_client`) never replays anything by itself:
that decision is this module's.
"""

from __future__ import annotations

from aiohttp import web

from gateway.upstream_client import BodyCut, ConnectFailed, ConnectTimedOut, Disconnected

# Methods a second execution cannot harm even when the first one ran to the end.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDEMPOTENCY_KEY = "Idempotency-Key"
# Failures where the request provably never left the gateway: no connection at all. A
# request past its upstream's bulkhead never waits for a pooled connection (nothing
# waits: see gateway.upstream_client), so a connect timeout is the TCP handshake's.
NOT_SENT = (ConnectFailed, ConnectTimedOut)
# The instance dropped the connection before the gateway relayed anything.
DROPPED = (Disconnected, BodyCut)


def replay_is_harmless(request: web.Request, *, honours_idempotency_key: bool) -> bool:
    """A second execution of ``request`` cannot do what the first did not (see the module docstring)."""
    if request.method in SAFE_METHODS:
        return True
    return honours_idempotency_key and request.method == "POST" and bool(request.headers.get(IDEMPOTENCY_KEY))


def may_retry(exc: BaseException, request: web.Request, *, honours_idempotency_key: bool) -> bool:
    """Whether a failed attempt, nothing of which reached the client yet, may be made again."""
    if isinstance(exc, NOT_SENT):
        return True
    if isinstance(exc, DROPPED):
        return replay_is_harmless(request, honours_idempotency_key=honours_idempotency_key)
    return False


def not_sent(exc: BaseException) -> bool:
    return isinstance(exc, NOT_SENT)
