"""``install(app, handlers)``: give a kit app its event bus (relay, and a consumer when it handles events)."""

from __future__ import annotations

from collections.abc import Mapping

from quart import Quart

from services.kit.context import ServiceKit, kit_of
from services.kit.events.bus import EventBus
from services.kit.events.envelope import DirectHandler, Handler
from services.kit.events.options import EventOptions


def install(
    app: Quart,
    *,
    handlers: Mapping[str, Handler] | None = None,
    options: EventOptions | None = None,
    direct_handlers: Mapping[str, DirectHandler] | None = None,
) -> None:
    """Start the bus after the database pool opens and stop it before the pool closes.

    The service's migrations must include :data:`services.kit.events.MIGRATIONS`.
    ``/readyz`` reports the broker connection. A service without a database consumes with
    ``direct_handlers`` instead (no outbox, no inbox: each handler de-duplicates itself).
    """
    kit = kit_of(app)

    async def start(kit: ServiceKit) -> None:
        settings = kit.settings
        direct = direct_handlers is not None
        chosen = options or EventOptions(
            prefetch=settings.events_prefetch if direct else min(settings.events_prefetch, settings.db_pool_max),
            retry_delays=settings.events_retry_delays,
        )
        if direct:
            kit.bus = EventBus(settings, None, kit.registry, direct_handlers, options=chosen)
        else:
            kit.bus = EventBus(settings, kit.database, kit.registry, handlers, options=chosen)
        await kit.bus.start()

    async def stop(kit: ServiceKit) -> None:
        bus, kit.bus = kit.bus, None
        if bus is not None:
            await bus.stop()

    async def broker_ready() -> None:
        if kit.bus is None or not kit.bus.ready():
            raise ConnectionError("broker not connected")

    kit.on_start.append(start)
    kit.on_stop.append(stop)
    kit.readiness_checks["broker"] = broker_ready
