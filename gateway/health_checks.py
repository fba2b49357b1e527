"""Active health checks: every instance's ``/readyz``, every few seconds, in the background.

An instance whose checks fail ``health_check_failures`` times in a row takes no
traffic until one check passes again. This finds an instance that hangs or lost its
database before a client request does, and brings a restarted one back without
waiting for a request to try it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable

import aiohttp
from aiohttp import web

from gateway.background import background_task
from gateway.balancer import Instance, Upstream
from gateway.config import GatewaySettings
from gateway.metrics import GatewayMetrics
from services.kit.logging import get_logger

log = get_logger("gateway.health")


class HealthChecks:
    def __init__(
        self,
        settings: GatewaySettings,
        upstreams: Iterable[Upstream],
        session: Callable[[], aiohttp.ClientSession],
        metrics: GatewayMetrics,
    ) -> None:
        self._settings = settings
        self._upstreams = tuple(upstreams)
        self._session = session
        self._metrics = metrics
        self._failures: dict[int, int] = {}

    async def run_in_background(self, app: web.Application) -> AsyncIterator[None]:
        """``cleanup_ctx``: checks run while the app serves (after the client session opened)."""
        for upstream in self._upstreams:
            for instance in upstream.instances:
                self._metrics.healthy.labels(route=upstream.name, upstream=instance.url).set(1)
        async with background_task(self._loop()):
            yield

    async def _loop(self) -> None:
        # A round starts every interval (or when the previous one ended, if it took longer):
        # a hung instance's probes wait their timeout without stretching the cadence.
        # Interval 1 s, timeout 1 s, 2 failures: an instance that stops answering takes no
        # new requests about 3 s later.
        loop = asyncio.get_running_loop()
        interval = self._settings.health_check_interval_seconds
        while True:
            await asyncio.sleep(interval)
            started = loop.time()
            await asyncio.gather(
                *(self.check(upstream, instance) for upstream in self._upstreams for instance in upstream.instances)
            )
            interval = max(0.0, self._settings.health_check_interval_seconds - (loop.time() - started))

    async def check(self, upstream: Upstream, instance: Instance) -> None:
        answered = instance.answered
        outcome = await self._probe(instance.url)
        # A probe that timed out while the instance answered proxied requests says the
        # gateway (or the instance's queue) was busy, not that the instance is gone: under
        # load a starved probe must not take a healthy instance out of rotation. A hung
        # instance answers nothing; a failing one answers its /readyz 503.
        passed = outcome == "passed" or (outcome == "timed out" and instance.answered > answered)
        key = id(instance)
        failures = 0 if passed else self._failures.get(key, 0) + 1
        self._failures[key] = failures
        healthy = failures < self._settings.health_check_failures
        if healthy != instance.healthy:
            instance.healthy = healthy
            log.warning(
                "instance healthy" if healthy else "instance unhealthy", route=upstream.name, upstream=instance.url
            )
            self._metrics.healthy.labels(route=upstream.name, upstream=instance.url).set(int(healthy))

    async def _probe(self, url: str) -> str:
        """``passed``, ``failed`` or ``timed out``."""
        timeout = aiohttp.ClientTimeout(total=self._settings.health_check_timeout_seconds)
        try:
            async with self._session().get(url + self._settings.health_check_path, timeout=timeout) as response:
                await response.read()
                return "passed" if response.status == 200 else "failed"
        except TimeoutError:
            return "timed out"
        except (aiohttp.ClientError, RuntimeError):
            return "failed"
