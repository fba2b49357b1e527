"""Connection pools: one per upstream, and a small one for the gateway's own calls.

Each upstream service gets a client session with a connector of its own, exactly as
large as the upstream's cap on requests in flight (``UPSTREAM_MAX_IN_FLIGHT``): a
request the upstream's :class:`~gateway.bulkheads.Bulkhead` let in always finds a
connection without waiting, and a service whose answers are slow can hold only its
own connections, never another service's. Health checks, the signing keys and the
OpenAPI documents go over the *control* session, so a saturated upstream pool never
fails the health checks of the instances behind it.

Proxied requests use the lean client of :mod:`gateway.upstream_client`: one
:class:`~gateway.upstream_client.InstancePool` of keep-alive connections per instance
(:meth:`UpstreamPools.instance`); idle ones are closed after ``UPSTREAM_KEEPALIVE_SECONDS``.
The aiohttp session of each upstream (:meth:`UpstreamPools.session`) stays for handlers
that need a general client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import aiohttp
from aiohttp import web
from yarl import URL

from gateway.background import background_task
from gateway.bulkheads import Bulkhead
from gateway.config import GatewaySettings
from gateway.upstream_client import InstancePool
from services.kit.tracing import request_id_trace_config

# The gateway's own calls: a handful of health probes per interval, key and spec fetches.
_CONTROL_CONNECTIONS = 32


class UpstreamPools:
    """The sessions (and so the connection pools) and bulkheads of every upstream."""

    def __init__(self, settings: GatewaySettings, upstreams: Iterable[str]) -> None:
        self._settings = settings
        self.bulkheads = {name: Bulkhead(f"the {name} service", settings.upstream_max_in_flight) for name in upstreams}
        self._sessions: dict[str, aiohttp.ClientSession] = {}
        self._control: aiohttp.ClientSession | None = None
        self._instances: dict[str, InstancePool] = {}
        for name in self.bulkheads:
            for url in settings.upstream_urls(name):
                parsed = URL(url)
                if parsed.scheme != "http" or parsed.host is None or parsed.port is None:
                    raise ValueError(f"the proxy speaks plain HTTP to its upstreams: {url!r}")
                self._instances[url] = InstancePool(parsed.host, parsed.port, settings.upstream_keepalive_seconds)

    def instance(self, url: str) -> InstancePool:
        """The keep-alive connections of one instance (by its base URL), for proxied requests."""
        return self._instances[url]

    def session(self, upstream: str) -> aiohttp.ClientSession:
        """The open session of one upstream, for proxied requests."""
        if upstream not in self._sessions:
            raise RuntimeError("the client sessions are not open")
        return self._sessions[upstream]

    def control(self) -> aiohttp.ClientSession:
        """The open session for the gateway's own calls (health checks, JWKS, OpenAPI)."""
        if self._control is None:
            raise RuntimeError("the client sessions are not open")
        return self._control

    async def open(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: the sessions open with the app and close after in-flight requests."""
        settings = self._settings
        self._control = aiohttp.ClientSession(
            connector=self._connector(_CONTROL_CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=settings.upstream_timeout_seconds),
            # JWKS, health and OpenAPI fetches carry the request id (and trace context) they serve.
            trace_configs=[request_id_trace_config()],
        )
        for name in self.bulkheads:
            self._sessions[name] = aiohttp.ClientSession(
                connector=self._connector(settings.upstream_max_in_flight),
                # Each request brings its route's timeouts; these are for anything else.
                timeout=aiohttp.ClientTimeout(
                    total=settings.upstream_timeout_seconds, connect=settings.upstream_connect_timeout_seconds
                ),
                # Bodies pass through byte for byte, with the upstream's Content-Encoding.
                auto_decompress=False,
                # A shared jar would hand one user's cookies to the next user's request.
                cookie_jar=aiohttp.DummyCookieJar(),
                # Forward what the client sent, not aiohttp's defaults (Accept-Encoding above all).
                skip_auto_headers=("Accept", "Accept-Encoding", "User-Agent", "Content-Type"),
            )
        try:
            async with background_task(self._close_idle()):
                yield
        finally:
            for pool in self._instances.values():
                pool.close()
            for session in (*self._sessions.values(), self._control):
                await session.close()
            self._sessions.clear()
            self._control = None

    async def _close_idle(self) -> None:
        # Reuse already refuses a connection idle too long; this closes the sockets themselves.
        keepalive = self._settings.upstream_keepalive_seconds
        while True:
            await asyncio.sleep(keepalive / 2)
            for pool in self._instances.values():
                pool.close_idle(older_than=keepalive)

    def _connector(self, limit: int) -> aiohttp.TCPConnector:
        # Below the services' hypercorn keep-alive (75 s): see GatewaySettings.
        return aiohttp.TCPConnector(limit=limit, keepalive_timeout=self._settings.upstream_keepalive_seconds)
