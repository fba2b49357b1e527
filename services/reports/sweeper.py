"""The job sweeper: no report stays ``queued`` or ``running`` forever.

A job can be stranded: its ``report.requested`` went to the unrouted queue
(no jobs queue was bound yet), the jobs queue was purged or lost, or a worker
died in a way that left the message settled. Every ``job_sweep_interval`` one
API instance (a transaction-level advisory lock; the rows ``FOR UPDATE SKIP
LOCKED`` besides) takes the unfinished jobs without progress for
``job_stale_seconds`` that no live worker holds, and in that one transaction:

- fails those created more than ``job_give_up_seconds`` ago, or already
  re-published ``job_max_sweeps`` times, with :data:`STUCK_REASON` and a
  ``report.completed`` event (as a worker's failure does);
- writes a new ``report.requested`` for the rest through the outbox and counts
  the sweep. A duplicate is harmless: the worker runs a job under its advisory
  lock (a second message for it waits, then finds it finished and is acked).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import CollectorRegistry, Counter

from services.kit.db import UNAVAILABLE_ERRORS, Database
from services.kit.logging import get_logger
from services.reports import events
from services.reports.config import ReportsSettings
from services.reports.store import report_jobs

log = get_logger("reports.sweeper")

_UNAVAILABLE: tuple[type[BaseException], ...] = (*UNAVAILABLE_ERRORS, TimeoutError)

# What the user reads on a job the sweeper gave up on (fixed: it says nothing about the internals).
STUCK_REASON = "the report could not be produced in time; please request it again"


@dataclass(frozen=True)
class Swept:
    republished: int = 0
    failed: int = 0


class JobSweeper:
    """Runs :meth:`sweep` every ``job_sweep_interval_seconds`` (:meth:`run`, the app's background task)."""

    def __init__(self, settings: ReportsSettings, db: Database, registry: CollectorRegistry) -> None:
        self._settings = settings
        self._db = db
        self._swept = Counter(
            "report_jobs_swept", "Stuck report jobs handled by the sweeper", ["outcome"], registry=registry
        )

    async def run(self) -> None:
        """Sweep every interval until cancelled; a failed round is logged and the next one comes."""
        while True:
            await asyncio.sleep(self._settings.job_sweep_interval_seconds)
            try:
                await self.sweep()
            except _UNAVAILABLE as error:  # the database is away: next round
                log.info("job sweep skipped", error=type(error).__name__)
            except Exception:
                log.exception("job sweep failed")

    async def sweep(self) -> Swept:
        """One round, in one transaction; what it did (nothing when another instance is sweeping)."""
        s = self._settings
        async with self._db.transaction() as conn:
            if not await report_jobs.try_lock_sweep(conn):
                return Swept()
            stuck = await report_jobs.claim_stuck_jobs(conn, stale_seconds=s.job_stale_seconds, limit=s.job_sweep_batch)
            give_up_before = datetime.now(UTC) - timedelta(seconds=s.job_give_up_seconds)
            doomed = [j for j in stuck if j.created_at < give_up_before or j.sweeps >= s.job_max_sweeps]
            again = [j for j in stuck if j.created_at >= give_up_before and j.sweeps < s.job_max_sweeps]
            for job in doomed:
                failed = await report_jobs.fail_job(conn, job.id, STUCK_REASON)
                if failed is not None:
                    await events.report_completed(conn, failed, None)
            for job in again:
                await events.report_requested(conn, job)
            if again:
                await report_jobs.mark_swept(conn, [j.id for j in again])
        if doomed:
            self._swept.labels("failed").inc(len(doomed))
            log.warning("stuck report jobs failed", jobs=[str(j.id) for j in doomed])
        if again:
            self._swept.labels("republished").inc(len(again))
            log.warning("stuck report jobs published again", jobs=[str(j.id) for j in again])
        return Swept(republished=len(again), failed=len(doomed))
