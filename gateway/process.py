"""The gateway as a process of the kit's runner: its aiohttp app and a private metrics listener.

Draining marks the app's health draining (``/readyz`` 503); when the runner says stop,
the public listener closes, requests in flight get up to ``shutdown_grace_seconds``
(aiohttp's ``shutdown_timeout``), then the app's cleanup (the client session) runs.
"""

from __future__ import annotations

from aiohttp import web

from gateway.app import HEALTH, create_app, create_metrics_app
from gateway.config import GatewaySettings
from services.kit.logging import get_logger
from services.kit.runner import Process, Until

log = get_logger("gateway")


class GatewayProcess(Process[GatewaySettings]):
    """The gateway's aiohttp app and its private metrics listener, as a runner process."""

    def __init__(self, settings: GatewaySettings) -> None:
        super().__init__(settings)
        self.app = create_app(settings)  # after setup_tracing: the server instrumentation wraps it

    def begin_drain(self) -> None:
        self.app[HEALTH].start_draining()

    async def serve(self, until: Until) -> None:
        settings = self.settings
        runner = web.AppRunner(
            self.app,
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
        metrics_runner = web.AppRunner(create_metrics_app(self.app), access_log=None)
        await metrics_runner.setup()
        try:
            await web.TCPSite(metrics_runner, settings.metrics_host, settings.metrics_port).start()
            await web.TCPSite(runner, settings.host, settings.port, backlog=settings.listen_backlog).start()
            log.info(
                "gateway listening",
                url=f"http://{settings.host}:{settings.port}",
                metrics=f"http://{settings.metrics_host}:{settings.metrics_port}/metrics",
            )
            await until()
        finally:
            await runner.cleanup()
            await metrics_runner.cleanup()
        log.info("gateway stopped")
