"""What the reports service keeps for the life of its app: its settings."""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.context import current_state
from services.reports.config import ReportsSettings


@dataclass(frozen=True)
class ReportsState:
    settings: ReportsSettings


def reports_state() -> ReportsState:
    """The state of the reports app handling the current request."""
    return current_state(ReportsState)
