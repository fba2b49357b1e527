"""The instances of one service, and which one takes the next request.

Each :class:`Instance` keeps three facts: how many requests it has outstanding,
whether its active health check passes, and the state of its circuit breaker.
:meth:`Upstream.pick` chooses among the instances that are healthy and whose
breaker lets a request through, the one with the fewest outstanding requests
(round robin among equals). When no instance qualifies it picks among all of them
("panic mode", as Envoy calls it): refusing everything would not help a service
whose only instance had one bad moment.

The breaker: ``breaker_failures`` consecutive failures (timeouts, broken
exchanges) open it, and a connect error opens it at once (passive ejection: the
instance is not there). Open, it takes no traffic for ``open_seconds``; then it is
half-open and lets one trial request through; the trial's success closes it, its
failure opens it again.
"""

from __future__ import annotations

import enum
import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


class BreakerState(enum.IntEnum):
    """The value is what the ``gateway_upstream_breaker_state`` gauge shows."""

    CLOSED = 0
    HALF_OPEN = 1
    OPEN = 2


@dataclass(eq=False)
class Instance:
    """One instance of a service, by base URL."""

    url: str
    failures_to_open: int = 3
    open_seconds: float = 5.0
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    outstanding: int = 0
    healthy: bool = True
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = False
    answered: int = 0  # exchanges it answered, ever: the health checks' evidence of life under load
    on_state_change: Callable[[Instance], None] | None = field(default=None, repr=False)

    def available(self) -> bool:
        """Whether the balancer may send this instance a request now."""
        if not self.healthy:
            return False
        if self.state is BreakerState.OPEN and self.clock() - self.opened_at >= self.open_seconds:
            self._set_state(BreakerState.HALF_OPEN)
        if self.state is BreakerState.HALF_OPEN:
            return not self.trial_in_flight
        return self.state is BreakerState.CLOSED

    def started(self) -> bool:
        """Count one exchange in; True when it is the half-open breaker's trial (pass it to ``finished``)."""
        self.outstanding += 1
        if self.state is BreakerState.HALF_OPEN and not self.trial_in_flight:
            self.trial_in_flight = True
            return True
        return False

    def finished(self, *, ok: bool | None, connect_failed: bool = False, trial: bool = False) -> None:
        """Record the outcome of one exchange: ``ok`` the upstream answered, ``None`` no verdict.

        Only the trial's own end (``trial``, as ``started`` returned) lets the next trial
        through: an exchange begun before the breaker opened may end while it is half-open.
        """
        self.outstanding = max(0, self.outstanding - 1)
        if trial:
            self.trial_in_flight = False
        if ok is None:
            return
        if ok:
            self.answered += 1
            self.failures = 0
            if self.state is not BreakerState.CLOSED:
                self._set_state(BreakerState.CLOSED)
            return
        self.failures += 1
        if connect_failed or self.state is BreakerState.HALF_OPEN or self.failures >= self.failures_to_open:
            self.opened_at = self.clock()
            self._set_state(BreakerState.OPEN)

    def _set_state(self, state: BreakerState) -> None:
        if state is not self.state:
            self.state = state
            if self.on_state_change is not None:
                self.on_state_change(self)


@dataclass
class Upstream:
    """The instances of one service."""

    name: str
    instances: tuple[Instance, ...]
    _turn: itertools.count[int] = field(default_factory=itertools.count, init=False, repr=False)

    @classmethod
    def of(cls, name: str, urls: Iterable[str], *, failures_to_open: int = 3, open_seconds: float = 5.0) -> Upstream:
        instances = tuple(Instance(url, failures_to_open, open_seconds) for url in urls)
        if not instances:
            raise ValueError(f"upstream {name!r} has no URLs")
        return cls(name, instances)

    @property
    def urls(self) -> tuple[str, ...]:
        return tuple(instance.url for instance in self.instances)

    def pick(self, exclude: Instance | None = None) -> Instance:
        """The instance for the next request (never ``exclude`` while there is another)."""
        if len(self.instances) == 1:
            only = self.instances[0]
            only.available()  # an open breaker turns half-open in time, as below
            return only
        candidates = [i for i in self.instances if i is not exclude and i.available()]
        if not candidates:
            candidates = [i for i in self.instances if i is not exclude] or list(self.instances)
        fewest = min(i.outstanding for i in candidates)
        least = [i for i in candidates if i.outstanding == fewest]
        return least[next(self._turn) % len(least)]
