"""What the app factory attaches to an app (:class:`ServiceKit`), and how running code reaches it.

A service keeps its own parts — settings of its own type, codecs, clients — in one
typed state object it hands to ``create_service_app(..., state=...)``, and reads it
back through one accessor of its own built on :func:`current_state`::

    @dataclass(frozen=True)
    class TodosState:
        settings: TodosSettings
        cursors: CursorCodec

    def todos_state() -> TodosState:
        return current_state(TodosState)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar, cast

from prometheus_client import CollectorRegistry
from quart import Quart, current_app, g, request

from services.kit.config import ServiceSettings
from services.kit.db import Database
from services.kit.metrics import HttpMetrics
from services.kit.migrations import MigrationSource
from services.kit.request_id import REQUEST_ID_HEADER, pick_request_id
from services.kit.tasks import BackgroundTasks, Work

if TYPE_CHECKING:  # both packages import this module: only their types here
    import aiohttp

    from services.kit.events.bus import EventBus
    from services.kit.security.verifier import TokenVerifier

Hook = Callable[["ServiceKit"], Awaitable[None]]
ReadinessCheck = Callable[[], Awaitable[None]]
StateT = TypeVar("StateT")


@dataclass
class ServiceKit:
    """What the app factory attaches to the app (``app.extensions["quartet"]``)."""

    settings: ServiceSettings
    registry: CollectorRegistry
    metrics: HttpMetrics
    db: Database | None
    migrations: Sequence[MigrationSource]
    # The service's own typed state (see the module docstring); None for a bare kit app.
    state: object = None
    readiness_checks: dict[str, ReadinessCheck] = field(default_factory=dict)
    on_start: list[Hook] = field(default_factory=list)
    on_stop: list[Hook] = field(default_factory=list)
    tasks: BackgroundTasks = field(default_factory=BackgroundTasks)
    draining: bool = False
    # The kit's own parts, set while the app starts by events.install and install_auth.
    bus: EventBus | None = None
    verifier: TokenVerifier | None = None
    verifier_session: aiohttp.ClientSession | None = None

    @property
    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError(f"{self.settings.service_name} has no database")
        return self.db

    def state_of(self, kind: type[StateT]) -> StateT:
        """The service's state, which must be a ``kind``."""
        if not isinstance(self.state, kind):
            raise RuntimeError(f"{self.settings.service_name} was not built with a {kind.__name__} state")
        return self.state

    def run_in_background(self, name: str, work: Work) -> None:
        """Start ``work()`` as the task ``name`` when the app starts (after the start hooks added
        before this call); like every task in :attr:`tasks` it is cancelled when the app stops."""

        async def start(kit: ServiceKit) -> None:
            kit.tasks.start(name, work)

        self.on_start.append(start)


def kit_of(app: Quart) -> ServiceKit:
    return cast(ServiceKit, app.extensions["quartet"])


def current_kit() -> ServiceKit:
    """The kit of the app handling the current request."""
    return kit_of(current_app)


def current_db() -> Database:
    return current_kit().database


def current_state(kind: type[StateT]) -> StateT:
    """The state of the app handling the current request (a ``kind``, else RuntimeError)."""
    return current_kit().state_of(kind)


def request_id() -> str:
    """The id of the current request (taken from ``X-Request-ID`` or generated)."""
    rid = g.get("request_id")
    if rid is None:
        rid = pick_request_id(request.headers.get(REQUEST_ID_HEADER))
        g.request_id = rid
    return cast(str, rid)
