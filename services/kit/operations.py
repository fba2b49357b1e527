"""The operations endpoints every kit app serves: ``/healthz``, ``/readyz`` and ``/metrics``."""

from __future__ import annotations

import asyncio
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from quart import Blueprint, Response
from quart_schema import hide

from services.kit.context import ReadinessCheck, current_kit
from services.kit.problem import Problem

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def operations_blueprint() -> Blueprint:
    bp = Blueprint("operations", __name__)

    @bp.get("/healthz")
    @hide
    async def healthz() -> dict[str, str]:
        """The process is up (liveness)."""
        return {"status": "ok"}

    @bp.get("/readyz")
    @hide
    async def readyz() -> tuple[dict[str, Any], int]:
        """Ready for traffic: its database and broker are reachable and it is not shutting down."""
        kit = current_kit()
        if kit.draining:
            raise Problem(503, "shutting down", headers={"Retry-After": "1"})
        results = await asyncio.gather(
            *(_check(name, check) for name, check in kit.readiness_checks.items()), return_exceptions=False
        )
        checks = dict(results)
        if not all(ok == "ok" for ok in checks.values()):
            raise Problem(
                503,
                "not ready: " + ", ".join(name for name, ok in checks.items() if ok != "ok"),
                headers={"Retry-After": "1"},
            )
        return {"status": "ok", "checks": checks}, 200

    @bp.get("/metrics")
    @hide
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        return Response(generate_latest(current_kit().registry), content_type=CONTENT_TYPE_LATEST)

    return bp


async def _check(name: str, check: ReadinessCheck) -> tuple[str, str]:
    try:
        await asyncio.wait_for(check(), timeout=2.0)
    except Exception as error:
        return name, f"failed: {type(error).__name__}"
    return name, "ok"
