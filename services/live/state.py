"""What the live service keeps for the life of its app: its settings, its feeds and its hub."""

from __future__ import annotations

from dataclasses import dataclass

from services.kit.context import current_state
from services.live.config import LiveSettings
from services.live.feeds import Feeds
from services.live.hub import Hub


@dataclass(frozen=True)
class LiveState:
    settings: LiveSettings
    feeds: Feeds
    hub: Hub


def live_state() -> LiveState:
    """The state of the live app handling the current request."""
    return current_state(LiveState)
