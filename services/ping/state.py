"""What the ping service keeps for the life of its app: its settings."""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.context import current_state
from services.ping.config import PingSettings


@dataclass(frozen=True)
class PingState:
    settings: PingSettings


def ping_state() -> PingState:
    """The state of the ping app handling the current request."""
    return current_state(PingState)
