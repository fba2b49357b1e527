"""``python -m gateway``: serve the gateway on settings.host:settings.port under uvloop.

SIGTERM (or SIGINT) drains: /readyz turns 503 at once, after ``drain_delay_seconds``
the listener closes, requests in flight get up to ``shutdown_grace_seconds`` to
finish, then the client session closes and the process exits 0.
"""

from __future__ import annotations

import asyncio
import signal

import uvloop
from aiohttp import web

from gateway.app import HEALTH, create_app, create_metrics_app
from gateway.config import GatewaySettings
from services.kit.logging import configure_logging, get_logger
from services.kit.tracing import setup_tracing

log = get_logger("gateway")


async def serve(settings: GatewaySettings) -> None:
    app = create_app(settings)
    runner = web.AppRunner(
        app,
        access_log=None,  # request_middleware writes the access log
        shutdown_timeout=settings.shutdown_grace_seconds,
        # aiohttp closes a connection whose next request head has not fully arrived within
        # its keep-alive timeout (counted from the connection opening or the previous
        # response): that is the slow-client (header read) protection.
        keepalive_timeout=min(settings.keep_alive_seconds, settings.header_read_timeout_seconds),
        # Long enough for every request line the contract allows (a 1,024-character ECHOMSG of
        # 4-byte characters is 12 KiB percent-encoded); longer is a plain 400 from the parser.
        max_line_size=settings.max_request_line_bytes,
        max_field_size=settings.max_header_bytes,
    )
    await runner.setup()
    metrics_runner = web.AppRunner(create_metrics_app(app), access_log=None)
    await metrics_runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.TCPSite(metrics_runner, settings.metrics_host, settings.metrics_port).start()
        await web.TCPSite(runner, settings.host, settings.port, backlog=settings.listen_backlog).start()
        log.info(
            "gateway listening",
            url=f"http://{settings.host}:{settings.port}",
            metrics=f"http://{settings.metrics_host}:{settings.metrics_port}/metrics",
        )
        await stop.wait()
        app[HEALTH].start_draining()
        log.info("draining", delay_seconds=settings.drain_delay_seconds, grace_seconds=settings.shutdown_grace_seconds)
        await asyncio.sleep(settings.drain_delay_seconds)
    finally:
        await runner.cleanup()
        await metrics_runner.cleanup()
    log.info("gateway stopped")


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.service_name, settings.log_level)
    setup_tracing(settings)  # before create_app: the aiohttp server instrumentation wraps web.Application
    uvloop.run(serve(settings))


if __name__ == "__main__":
    main()
