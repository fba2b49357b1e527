"""Serve a service under hypercorn with uvloop, and drain on SIGTERM.

On SIGTERM (or SIGINT) ``/readyz`` turns 503 at once; after
``drain_delay_seconds`` (time for a load balancer to notice) the listener
closes and in-flight requests get up to ``shutdown_grace_seconds`` to finish;
then the app's stop hooks run and the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal

import uvloop
from hypercorn.asyncio import serve
from hypercorn.config import Config
from quart import Quart

from services.kit.app import kit_of
from services.kit.config import ServiceSettings
from services.kit.logging import get_logger

log = get_logger("kit.runner")


def hypercorn_config(settings: ServiceSettings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.keep_alive_timeout = settings.keep_alive_seconds
    # Hypercorn closes a kept-alive connection after 1,000 requests by default; the gateway's
    # pooled connections would then race that close (connection reset → 502). Make it rare.
    config.keep_alive_max_requests = 1_000_000
    config.graceful_timeout = settings.shutdown_grace_seconds
    config.read_timeout = 60  # a client that sends nothing for a minute is dropped
    config.h11_max_incomplete_size = 64 * 1024  # bounded request line + headers
    config.accesslog = None  # the app logs one JSON line per request itself
    config.errorlog = logging.getLogger("hypercorn.error")  # through our JSON handler
    return config


async def serve_until_stopped(app: Quart, settings: ServiceSettings) -> None:
    kit = kit_of(app)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def begin_drain(sig: signal.Signals) -> None:
        if kit.draining:
            return
        log.info("draining", signal=sig.name, delay_seconds=settings.drain_delay_seconds)
        kit.draining = True
        loop.call_later(settings.drain_delay_seconds, stop.set)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, begin_drain, sig)
    await serve(app, hypercorn_config(settings), shutdown_trigger=stop.wait)


def run(app: Quart, settings: ServiceSettings) -> None:
    """Serve ``app`` until SIGTERM, then drain and return."""
    uvloop.run(serve_until_stopped(app, settings))
