"""Several instances of a service: balancing, failover, breakers and health checks, with real processes.

SIGKILL uses two real todos instances on the suite's database (a user token, real
reads); SIGSTOP uses two ping instances. Every stopped process is continued and
every started one stopped in ``finally``. Waits poll with generous deadlines.
"""

from __future__ import annotations

import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from gateway.balancer import BreakerState, Instance, Upstream
from tests.gateway.conftest import StartGateway, nothing_listening
from tests.suite import Suite, User
from tests.support import ServiceProcess, assert_problem, free_port

StartInstance = Callable[[str, dict[str, str]], ServiceProcess]


@pytest.fixture
def start_instance(log_dir: Path) -> Iterator[StartInstance]:
    """Start ``python -m <module>`` with ``env`` (PORT included), ready; stopped (and continued) at the end."""
    started: list[ServiceProcess] = []

    def start(module: str, env: dict[str, str]) -> ServiceProcess:
        proc = ServiceProcess(module, env, log_dir / f"{module}-{env['PORT']}-{time.time_ns()}.log")
        started.append(proc)
        proc.wait_ready()
        return proc

    yield start
    for proc in started:
        proc.signal(signal.SIGCONT)
        proc.stop()


def metric(gateway: ServiceProcess, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in httpx.get(f"{gateway.metrics_url}/metrics").text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and all(f'{key}="{value}"' in match.group(1) for key, value in labels.items()):
            total += float(match.group(2))
    return total


def served(gateway: ServiceProcess, route: str, upstream: str) -> float:
    return metric(gateway, "gateway_requests_total", route=route, upstream=upstream, status="200")


def wait_for(condition: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@dataclass(frozen=True)
class Answer:
    started: float
    status: int
    seconds: float
    instance: str = ""  # which ping instance answered, when it says


@dataclass
class Stream:
    """A steady stream of GETs from a few threads, recording each answer."""

    url: str
    headers: dict[str, str]
    workers: int = 4
    results: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def __enter__(self) -> Stream:
        for _ in range(self.workers):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)

    def _run(self) -> None:
        with httpx.Client(headers=self.headers, timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                instance = ""
                try:
                    resp = client.get(self.url)
                    status = resp.status_code
                    if status == 200 and "/ping" in self.url:
                        instance = resp.json()["instance"]
                except httpx.HTTPError:
                    status = 599  # the gateway cut the connection: as bad as a 5xx
                self.results.append(Answer(started, status, time.monotonic() - started, instance))
                time.sleep(0.01)

    def failures_since(self, moment: float) -> list[Answer]:
        return [answer for answer in list(self.results) if answer.started >= moment and answer.status >= 500]

    def tally(self) -> dict[int, int]:
        return dict(sorted(Counter(answer.status for answer in list(self.results)).items()))


def balanced_pings(
    start_gateway: StartGateway, start_instance: StartInstance, first: str, second: str, **settings: str
) -> tuple[ServiceProcess, ServiceProcess]:
    """Two ping instances that say they are ``first`` and ``second``, and a gateway with ``settings``
    balancing /ping over them: (the ``first`` instance, the gateway)."""
    a = start_instance("services.ping", {"PORT": str(free_port()), "INSTANCE": first})
    b = start_instance("services.ping", {"PORT": str(free_port()), "INSTANCE": second})
    return a, start_gateway({"PING_URLS": f"{a.url},{b.url}", **settings})


def mortal_and_survivor(start_instance: StartInstance) -> tuple[ServiceProcess, ServiceProcess]:
    """Two echo upstreams. "mortal" exits on /die after reading the request (as if killed after
    committing); "survivor" answers /die 404, as a replayed request for something deleted would."""
    mortal = start_instance("tests.gateway.echo_upstream", {"PORT": str(free_port()), "ECHO_MORTAL": "1"})
    survivor = start_instance("tests.gateway.echo_upstream", {"PORT": str(free_port())})
    return mortal, survivor


def until_the_mortal_dies(mortal: ServiceProcess, send: Callable[[], httpx.Response]) -> httpx.Response:
    """``send()`` (at most four times) until the request reaches ``mortal`` and it exits: that request's answer.
    Tries that reach the survivor first must get its own 404."""
    for _ in range(4):
        resp = send()
        try:
            mortal.proc.wait(1)  # its exit may be reaped a moment after the answer
            return resp
        except subprocess.TimeoutExpired:
            pass
        assert resp.status_code == 404  # the survivor's own answer
    raise AssertionError("the mortal instance never got the request")


def environment_of(proc: ServiceProcess) -> dict[str, str]:
    """The environment a running process was started with (to start its twin)."""
    raw = Path(f"/proc/{proc.proc.pid}/environ").read_bytes()
    pairs = (item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)
    return {name: value for name, value in pairs}


async def test_sigkill_one_todos_instance_the_other_serves_and_a_restart_brings_it_back(
    start_gateway: StartGateway, start_instance: StartInstance, suite: Suite, alice: User
) -> None:
    twin_env = {k: v for k, v in environment_of(suite.processes["todos"]).items() if k not in {"PORT", "INSTANCE"}}
    port_a, port_b = free_port(), free_port()
    a = start_instance("services.todos", {**twin_env, "PORT": str(port_a)})
    b = start_instance("services.todos", {**twin_env, "PORT": str(port_b)})
    gateway = start_gateway(
        {
            "AUTH_URL": suite.auth_url,
            "AUTH_URLS": suite.auth_url,
            "TODOS_URLS": f"{a.url},{b.url}",
            "HEALTH_CHECK_INTERVAL_SECONDS": "0.5",
            "BREAKER_OPEN_SECONDS": "1",
        }
    )
    with Stream(f"{gateway.url}/todos", {"Authorization": f"Bearer {alice.token}"}) as stream:
        wait_for(lambda: served(gateway, "todos", a.url) > 0 and served(gateway, "todos", b.url) > 0, what="both")
        a.signal(signal.SIGKILL)
        a.proc.wait(10)
        b_before = served(gateway, "todos", b.url)
        time.sleep(2)
        # Requests in flight at the kill were reset before any answer: tried again on b.
        assert stream.failures_since(0) == []
        assert served(gateway, "todos", b.url) > b_before + 10
        wait_for(lambda: metric(gateway, "gateway_upstream_healthy", upstream=a.url) == 0, what="a unhealthy")

        restarted = start_instance("services.todos", {**twin_env, "PORT": str(port_a)})
        assert restarted.url == a.url
        a_before = served(gateway, "todos", a.url)
        wait_for(lambda: served(gateway, "todos", a.url) > a_before + 10, what="traffic back on the restarted instance")
        assert metric(gateway, "gateway_upstream_healthy", upstream=a.url) == 1
        assert metric(gateway, "gateway_upstream_breaker_state", upstream=a.url) == BreakerState.CLOSED
    retries = metric(gateway, "gateway_upstream_retries_total", route="todos")
    print(f"\nGETs: {len(stream.results)}, by status {stream.tally()}, retried on the other instance {retries:.0f}")
    assert stream.failures_since(0) == []
    assert len(stream.results) > 100


def test_sigstop_times_out_as_504_opens_the_breaker_and_sigcont_closes_it(
    start_gateway: StartGateway, start_instance: StartInstance
) -> None:
    a, gateway = balanced_pings(
        start_gateway,
        start_instance,
        "stopped",
        "running",
        UPSTREAM_ROUTE_TIMEOUTS="ping=1",
        BREAKER_FAILURES="2",
        BREAKER_OPEN_SECONDS="4",
        # Only the breaker acts here; the health checks have their own test.
        HEALTH_CHECK_INTERVAL_SECONDS="600",
    )
    url = f"{gateway.url}/ping"
    assert {httpx.get(url).json()["instance"] for _ in range(4)} == {"stopped", "running"}
    a.signal(signal.SIGSTOP)
    try:
        timeouts = 0
        for _ in range(20):
            resp = httpx.get(url, timeout=10)
            if resp.status_code == 504:
                assert_problem(resp, 504)
                timeouts += 1
            else:
                assert resp.json()["instance"] == "running"
            if metric(gateway, "gateway_upstream_breaker_state", upstream=a.url) == BreakerState.OPEN:
                break
        assert timeouts >= 2
        assert metric(gateway, "gateway_upstream_breaker_state", upstream=a.url) == BreakerState.OPEN
        # Open: the stopped instance gets nothing, so nothing waits for it.
        started = time.monotonic()
        assert [httpx.get(url).json()["instance"] for _ in range(5)] == ["running"] * 5
        assert time.monotonic() - started < 3
        assert metric(gateway, "gateway_upstream_failures_total", upstream=a.url, reason="timeout") >= 2
    finally:
        a.signal(signal.SIGCONT)

    def closed_again() -> bool:
        httpx.get(url, timeout=10)  # the trial request after the open period needs traffic
        return metric(gateway, "gateway_upstream_breaker_state", upstream=a.url) == BreakerState.CLOSED

    wait_for(closed_again, timeout=30, what="the breaker to close")
    assert {httpx.get(url).json()["instance"] for _ in range(6)} == {"stopped", "running"}


@pytest.mark.slow
def test_sigstop_for_20_s_nobody_waits_past_the_deadline_and_sigcont_rejoins(
    start_gateway: StartGateway, start_instance: StartInstance
) -> None:
    # The default deadline and health checks.
    a, gateway = balanced_pings(start_gateway, start_instance, "stopped", "running")
    deadline = 6.0  # the ping route's: GatewaySettings.upstream_timeout_seconds
    with Stream(f"{gateway.url}/ping", {}) as stream:
        wait_for(lambda: {r.instance for r in stream.results} == {"stopped", "running"}, what="both answering")
        a.signal(signal.SIGSTOP)
        stopped_at = time.monotonic()
        try:
            time.sleep(20)
        finally:
            a.signal(signal.SIGCONT)
        continued_at = time.monotonic()
        wait_for(
            lambda: any(r.instance == "stopped" and r.started > continued_at for r in list(stream.results)),
            timeout=15,
            what="the continued instance to answer again",
        )
    during = [r for r in stream.results if stopped_at <= r.started < continued_at]
    caught = [r for r in during if r.status != 200]
    late = [r for r in during if r.started >= stopped_at + 5]
    print(
        f"\nGETs while stopped: {len(during)}, caught on the stopped instance {len(caught)}"
        f" (statuses {Counter(r.status for r in caught)}), longest wait {max(r.seconds for r in during):.2f} s"
    )
    # Caught ones get a 504 problem at the route deadline; nobody waits longer.
    assert {r.status for r in caught} <= {504}
    assert max(r.seconds for r in stream.results) < deadline + 1
    # Within 5 s the stopped instance gets no new request.
    assert late and all(r.status == 200 and r.instance == "running" for r in late)


def test_an_idempotent_request_is_retried_on_another_instance(
    start_gateway: StartGateway, ping_service: ServiceProcess
) -> None:
    dead = nothing_listening()
    gateway = start_gateway({"PING_URLS": f"{dead},{ping_service.url}", "BREAKER_OPEN_SECONDS": "0.1"})
    for _ in range(6):
        resp = httpx.get(f"{gateway.url}/ping", params={"ECHOMSG": "again"})
        assert resp.status_code == 200
        assert resp.json()["message"] == "again"
        time.sleep(0.15)  # past the open period: the dead instance is tried again
    assert metric(gateway, "gateway_upstream_retries_total", route="ping") >= 1
    assert metric(gateway, "gateway_upstream_failures_total", upstream=dead, reason="connect") >= 1


@pytest.mark.parametrize(("method", "replayed"), [("DELETE", False), ("PUT", False), ("GET", True)])
def test_an_instance_dying_mid_request_replays_only_safe_methods(
    start_gateway: StartGateway, start_instance: StartInstance, method: str, replayed: bool
) -> None:
    mortal, survivor = mortal_and_survivor(start_instance)
    gateway = start_gateway({"AUTH_URLS": f"{mortal.url},{survivor.url}", "HEALTH_CHECK_INTERVAL_SECONDS": "600"})
    with httpx.Client(timeout=10) as client:
        # Kept-alive connections to both: the fatal request goes out on a reused one.
        assert {client.get(f"{gateway.url}/auth/warm").status_code for _ in range(4)} == {200}
        resp = until_the_mortal_dies(mortal, lambda: client.request(method, f"{gateway.url}/auth/die"))
    if replayed:
        # A GET that got no byte of an answer on a reused connection is harmless to repeat.
        assert resp.status_code == 404
        assert metric(gateway, "gateway_upstream_retries_total", route="auth") == 1
    else:
        # The handler may have run: never replayed elsewhere, the client learns it failed.
        assert_problem(resp, 502)
        assert metric(gateway, "gateway_upstream_retries_total", route="auth") == 0
        assert metric(gateway, "gateway_requests_total", route="auth", upstream=survivor.url, status="404") == 0


@pytest.mark.parametrize(("key", "replayed"), [("first-try-1", True), (None, False)])
def test_a_post_is_replayed_only_with_an_idempotency_key(
    start_gateway: StartGateway,
    start_instance: StartInstance,
    suite: Suite,
    alice: User,
    key: str | None,
    replayed: bool,
) -> None:
    # As above, on the todos route, whose service replays the first answer for a key.
    mortal, survivor = mortal_and_survivor(start_instance)
    gateway = start_gateway(
        {
            "AUTH_URL": suite.auth_url,
            "TODOS_URLS": f"{mortal.url},{survivor.url}",
            "HEALTH_CHECK_INTERVAL_SECONDS": "600",
        }
    )
    headers = {"Authorization": f"Bearer {alice.token}", **({"Idempotency-Key": key} if key else {})}
    with httpx.Client(timeout=10, headers=headers) as client:
        resp = until_the_mortal_dies(mortal, lambda: client.post(f"{gateway.url}/todos/die", json={"content": "once"}))
    if replayed:
        assert resp.status_code == 404  # the survivor's answer to the same request
        assert metric(gateway, "gateway_upstream_retries_total", route="todos") == 1
    else:
        assert_problem(resp, 502)
        assert metric(gateway, "gateway_upstream_retries_total", route="todos") == 0


def test_an_instance_failing_its_health_check_gets_no_traffic(
    start_gateway: StartGateway, start_instance: StartInstance
) -> None:
    quick_checks = {"HEALTH_CHECK_INTERVAL_SECONDS": "0.3", "HEALTH_CHECK_TIMEOUT_SECONDS": "0.3"}
    a, gateway = balanced_pings(start_gateway, start_instance, "sick", "well", **quick_checks)
    a.signal(signal.SIGSTOP)
    try:
        wait_for(lambda: metric(gateway, "gateway_upstream_healthy", upstream=a.url) == 0, what="a unhealthy")
        # No client request had to time out to find out.
        assert [httpx.get(f"{gateway.url}/ping").json()["instance"] for _ in range(5)] == ["well"] * 5
    finally:
        a.signal(signal.SIGCONT)
    wait_for(lambda: metric(gateway, "gateway_upstream_healthy", upstream=a.url) == 1, what="a healthy again")


# The balancer's rules, without processes.


def test_least_outstanding_wins_and_equals_take_turns() -> None:
    upstream = Upstream.of("t", ["http://a", "http://b", "http://c"])
    a, b, c = upstream.instances
    a.started()
    b.started()
    assert upstream.pick() is c
    c.started()
    a.finished(ok=True)
    assert upstream.pick() is a
    b.finished(ok=True)
    c.finished(ok=True)
    assert {upstream.pick().url for _ in range(3)} == {"http://a", "http://b", "http://c"}


def state_of(instance: Instance) -> BreakerState:
    """The breaker's state now (read through a call, so a type checker does not keep an earlier one)."""
    return instance.state


def test_breaker_opens_after_failures_half_opens_for_one_trial_and_closes_on_success() -> None:
    now = [0.0]
    instance = Instance("http://a", failures_to_open=2, open_seconds=5, clock=lambda: now[0])
    instance.started()
    instance.finished(ok=False)
    assert state_of(instance) is BreakerState.CLOSED and instance.available()
    instance.started()
    instance.finished(ok=False)
    assert state_of(instance) is BreakerState.OPEN and not instance.available()
    now[0] = 5.0
    assert instance.available() and state_of(instance) is BreakerState.HALF_OPEN
    trial = instance.started()
    assert trial and not instance.available()  # one trial at a time
    instance.finished(ok=False, trial=trial)
    assert state_of(instance) is BreakerState.OPEN
    now[0] = 10.0
    assert instance.available()
    trial = instance.started()
    instance.finished(ok=True, trial=trial)
    assert state_of(instance) is BreakerState.CLOSED


def test_only_the_trial_ending_lets_another_trial_through() -> None:
    now = [0.0]
    upstream = Upstream.of("t", ["http://a", "http://b"], failures_to_open=1, open_seconds=5)
    a, b = upstream.instances
    a.clock = lambda: now[0]
    a.started()  # begun while closed: no trial
    a.started()
    a.finished(ok=False, connect_failed=True)
    assert state_of(a) is BreakerState.OPEN
    now[0] = 5.0
    assert a.available() and state_of(a) is BreakerState.HALF_OPEN
    trial = a.started()
    assert not a.available()
    # The request begun before the breaker opened ends (its client went away): the
    # trial is still out, so no second request may go to the failing instance.
    a.finished(ok=None)
    assert a.trial_in_flight and not a.available()
    assert trial
    b.started()
    b.started()
    assert {upstream.pick() for _ in range(4)} == {b}  # though b is the busier one
    # Panic-mode picks of a half-open instance are no second trial either.
    assert not a.started()
    a.finished(ok=None)
    assert not a.available()
    a.finished(ok=True, trial=trial)
    assert state_of(a) is BreakerState.CLOSED and a.available()


def test_a_connect_failure_ejects_at_once_and_panic_mode_still_picks() -> None:
    upstream = Upstream.of("t", ["http://a", "http://b"])
    a, b = upstream.instances
    a.started()
    a.finished(ok=False, connect_failed=True)
    assert state_of(a) is BreakerState.OPEN
    assert {upstream.pick() for _ in range(4)} == {b}
    assert upstream.pick(exclude=b) is a  # nothing else left: the open one is still tried
    b.healthy = False
    assert upstream.pick() in (a, b)  # nothing available: panic mode picks among all
