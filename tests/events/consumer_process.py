"""A consuming service reduced to its event side, run as a process the tests can SIGKILL.

``python -m tests.events.consumer_process`` with SERVICE_NAME, DATABASE_URL,
AMQP_URL and EVENTS_EXCHANGE set. Each ``thing.happened`` event inserts one row in
``effects`` (a table without a unique key, so a doubled effect would show).
"""

from __future__ import annotations

import asyncio
import signal

from prometheus_client import CollectorRegistry

from services.kit.config import ServiceSettings
from services.kit.db import Connection, Database
from services.kit.events import Event, EventBus, EventOptions
from services.kit.logging import configure_logging, get_logger

OPTIONS = EventOptions(prefetch=20, retry_delays=(0.2, 0.5), reconnect_min=0.1, reconnect_max=1.0)


async def record_effect(conn: Connection, event: Event) -> None:
    await conn.execute("INSERT INTO effects (event_id, note) VALUES ($1, $2)", event.id, event.data.get("note"))
    await asyncio.sleep(0.002)  # widen the window between the effect and the ack


async def main() -> None:
    settings = ServiceSettings()
    configure_logging(settings.service_name, settings.log_level)
    log = get_logger("consumer_process")
    db = Database(settings)
    await db.open()
    bus = EventBus(settings, db, CollectorRegistry(), {"thing.happened": record_effect}, options=OPTIONS)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await bus.start()
    if await bus.wait_ready(30):
        log.info("consumer ready")
    await stop.wait()
    await bus.stop()
    await db.close()


if __name__ == "__main__":
    asyncio.run(main())
