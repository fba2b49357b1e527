"""A kit service as a :class:`services.kit.runner.Process`: its Quart app under hypercorn.

Draining sets ``kit.draining`` (``/readyz`` answers 503); when the runner says stop,
hypercorn closes the listener, gives requests in flight up to
``shutdown_grace_seconds`` and then runs the app's ``after_serving`` (the kit's stop hooks).
"""

from __future__ import annotations

import logging

from hypercorn.asyncio import serve
from hypercorn.config import Config
from hypercorn.utils import LifespanFailureError
from quart import Quart

from services.kit.app import kit_of
from services.kit.config import ServiceSettings
from services.kit.runner import CannotStart, Process, S, Until


def hypercorn_config(settings: ServiceSettings) -> Config:
    config = Config()
    config.bind = [f"{settings.host}:{settings.port}"]
    config.keep_alive_timeout = settings.keep_alive_seconds
    # Hypercorn closes a kept-alive connection after 1,000 requests by default; the gateway's
    # pooled connections would then race that close (connection reset → 502). Make it rare.
    config.keep_alive_max_requests = 1_000_000
    config.graceful_timeout = settings.shutdown_grace_seconds
    # No read timeout: on Python 3.11 hypercorn wraps every socket read in asyncio.wait_for
    # (a task and a timer per read, ~3 % of a small request). Silent clients are still cut:
    # before a full request head the connection counts as idle (keep_alive_timeout closes it),
    # a stalled body meets Quart's BODY_TIMEOUT, a handler its deadline, a response that is
    # not read RESPONSE_TIMEOUT; a response sent before the body was read closes the connection.
    config.read_timeout = None
    config.include_server_header = False  # one header less on every response, and no version leak
    config.backlog = 1024  # bursts of new connections (a restarted gateway's pool) are not refused
    config.h11_max_incomplete_size = 64 * 1024  # bounded request line + headers
    config.accesslog = None  # the app logs one JSON line per request itself
    config.errorlog = logging.getLogger("hypercorn.error")  # through our JSON handler
    return config


class HttpProcess(Process[S]):
    """Serves a kit app (``create_app(settings)``) on ``settings.host:settings.port``."""

    def __init__(self, app: Quart, settings: S) -> None:
        super().__init__(settings)
        self.app = app

    def begin_drain(self) -> None:
        kit_of(self.app).draining = True

    async def serve(self, until: Until) -> None:
        try:
            await serve(self.app, hypercorn_config(self.settings), shutdown_trigger=until)
        except LifespanFailureError as error:
            # A start hook refused (a signing key sealed under another KEK, say): its message
            # says what to do; a traceback of hypercorn's lifespan would only bury it.
            raise CannotStart(f"{self.settings.service_name} cannot start: {error}") from None
