"""The work queue of report jobs: ``<service>.jobs``, bound to ``report.requested`` on the events exchange.

The API never publishes to it directly: ``POST /reports`` writes the job and a
``report.requested`` event in one transaction, and the kit's outbox relay
publishes the event (confirmed, mandatory) to the exchange, which routes it here.
Both the API (at start) and every worker declare the queue, so a job is never
unroutable for long, whichever starts first.
"""

from __future__ import annotations

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractQueue

from services.kit.events.broker import declare_exchange
from services.kit.logging import get_logger
from services.reports.config import ReportsSettings
from services.reports.events import REPORT_REQUESTED

log = get_logger("reports.jobs")


async def declare_jobs_queue(channel: AbstractChannel, settings: ReportsSettings) -> AbstractQueue:
    exchange = await declare_exchange(channel, settings.events_exchange)
    queue = await channel.declare_queue(settings.jobs_queue, durable=True)
    await queue.bind(exchange, routing_key=REPORT_REQUESTED)
    return queue


async def ensure_jobs_queue(settings: ReportsSettings, timeout: float = 5.0) -> bool:  # noqa: ASYNC109
    """Declare the queue once over a short connection; ``False`` (logged) when the broker is away."""
    try:
        connection = await aio_pika.connect(settings.amqp_url, timeout=timeout)
        async with connection:
            await declare_jobs_queue(await connection.channel(), settings)
    except Exception as error:  # the relay keeps retrying unroutable events; a worker declares it too
        log.warning("jobs queue not declared", queue=settings.jobs_queue, error=f"{type(error).__name__}: {error}")
        return False
    return True
