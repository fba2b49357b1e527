"""All SQL of the reports service; every user query names its owner.

- ``readmodel``: each todo's latest state from its events, and the statistics.
- ``jobs``: report jobs and their files (the API by owner, the worker by job id).
- ``owners``: the per-owner lock, deleted accounts, and the purge of all an owner had.

Callers use the names below (``store.create_job``); the modules only keep each part short.
"""

from __future__ import annotations

from services.reports.store.jobs import (
    JobRow,
    ReportFile,
    complete_job,
    create_job,
    expected_todos,
    fail_job,
    get_file,
    get_job,
    job_by_id,
    list_jobs,
    note_retry,
    set_progress,
    start_job,
)
from services.reports.store.owners import AccountDeleted, purge_owner
from services.reports.store.readmodel import SUMMARY_DAYS, DayCount, Summary, TodoFact, apply_todo, summary

__all__ = [
    "SUMMARY_DAYS",
    "AccountDeleted",
    "DayCount",
    "JobRow",
    "ReportFile",
    "Summary",
    "TodoFact",
    "apply_todo",
    "complete_job",
    "create_job",
    "expected_todos",
    "fail_job",
    "get_file",
    "get_job",
    "job_by_id",
    "list_jobs",
    "note_retry",
    "purge_owner",
    "set_progress",
    "start_job",
    "summary",
]
