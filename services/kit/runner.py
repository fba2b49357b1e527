"""One way to run a process of the suite: HTTP services, the gateway and workers.

:func:`main` (or :func:`run`, once the settings are read) owns the lifecycle; what
differs between kinds of process lives in a small :class:`Process` subclass
(hypercorn for the services, :mod:`services.kit.http_process`; aiohttp for the
gateway; the report worker's consumer):

1. The settings are read from the environment. Invalid ones print
   ``invalid configuration`` and the reason, and the process exits 2 (no traceback).
2. Logging is configured, then tracing (before the adapter is built: the
   instrumentation wraps the app it builds). An adapter that cannot start raises
   :class:`CannotStart` (a service whose start hook fails does too, through
   :mod:`services.kit.http_process`): its message goes to stderr and the process exits 2.
3. The process serves under uvloop.
4. On SIGTERM (or SIGINT) it drains: ``/readyz`` turns 503 at once; after the
   adapter's drain delay (``drain_delay_seconds``: time for a load balancer to
   notice; none for a worker, which nothing routes to) the listener closes or the
   worker stops taking jobs, and work in flight gets up to
   ``shutdown_grace_seconds`` to finish; then the stop hooks run and the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from services.kit.config import ServiceSettings
from services.kit.logging import configure_logging, get_logger

log = get_logger("kit.runner")

S = TypeVar("S", bound=ServiceSettings)
Until = Callable[[], Awaitable[object]]


class CannotStart(Exception):
    """The process must not start (a missing font, say); the message says why, for stderr."""


class Process(Generic[S]):
    """What the runner runs: one small adapter per kind of process overrides :meth:`serve`."""

    def __init__(self, settings: S) -> None:
        self.settings = settings

    @property
    def drain_delay_seconds(self) -> float:
        """How long readiness says 503 before the listener closes (a worker says 0)."""
        return self.settings.drain_delay_seconds

    def begin_drain(self) -> None:
        """Turn readiness to 503; keep serving (nothing to do for a process without readiness)."""

    async def serve(self, until: Until) -> None:
        """Start, serve until ``until()`` returns, then stop taking work, let the work in
        flight finish within ``shutdown_grace_seconds``, run the stop hooks and return."""
        raise NotImplementedError


def read_settings(settings_type: type[S]) -> S | None:
    """The settings from the environment; ``None`` (said on stderr) when they are invalid."""
    try:
        return settings_type()
    except ValidationError as error:
        print(f"invalid configuration:\n{error}", file=sys.stderr)
        return None


def main(settings_type: type[S], build: Callable[[S], Process[S]], *, role: str = "") -> int:
    """Read the settings, configure logging and :func:`run`; the exit code.

    ``role`` names a process beside its service's HTTP one (``"worker"``: logs and
    traces say ``reports-worker``).
    """
    settings = read_settings(settings_type)
    if settings is None:
        return 2
    name = f"{settings.service_name}-{role}" if role else settings.service_name
    configure_logging(name, settings.log_level)
    return run(settings, build, name)


def run(settings: S, build: Callable[[S], Process[S]], name: str | None = None) -> int:
    """Set up tracing, build the process and serve it until SIGTERM, then drain; the exit code."""
    import uvloop  # uvloop and tracing only in processes that serve

    from services.kit.tracing import setup_tracing

    setup_tracing(settings, name)
    try:
        uvloop.run(serve_until_signalled(build(settings)))
    except CannotStart as error:
        log.error("not started", error=str(error))
        print(error, file=sys.stderr)
        return 2
    return 0


async def serve_until_signalled(process: Process[Any]) -> None:
    """Serve ``process``; SIGTERM or SIGINT begins the drain (a second signal changes nothing)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    draining = False

    def begin_drain(sig: signal.Signals) -> None:
        nonlocal draining
        if draining:
            return
        draining = True
        delay = process.drain_delay_seconds
        log.info(
            "draining", signal=sig.name, delay_seconds=delay, grace_seconds=process.settings.shutdown_grace_seconds
        )
        process.begin_drain()
        loop.call_later(delay, stop.set)

    signals = (signal.SIGTERM, signal.SIGINT)
    for sig in signals:
        loop.add_signal_handler(sig, begin_drain, sig)
    try:
        await process.serve(stop.wait)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
