"""Rate limits: per client address, per token subject, the login budget; in process and shared via Redis.

Clients are told apart by their source address: each binds its own loopback address
(127.0.0.2, 127.0.0.3...), as different machines would be. Budgets refill slowly
(one token a minute) so no test depends on timing.
"""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest

from gateway.buckets import Budget, MemoryBuckets, refill
from tests.gateway.conftest import StartGateway
from tests.gateway.upstreams import suite_upstreams
from tests.suite import Suite, User
from tests.support import ServiceProcess, assert_problem

SLOW = str(1 / 60)


def client_from(address: str) -> httpx.Client:
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=10)


def address_budget(ping: ServiceProcess, burst: int, **settings: str) -> dict[str, str]:
    """Gateway settings: ping routed to ``ping``, each client address allowed ``burst`` requests, slowly refilled."""
    return {
        "PING_URLS": ping.url,
        "RATE_LIMIT_ADDRESS_PER_SECOND": SLOW,
        "RATE_LIMIT_ADDRESS_BURST": str(burst),
        **settings,
    }


def assert_limited(resp: httpx.Response) -> None:
    assert_problem(resp, 429)
    assert int(resp.headers["retry-after"]) >= 1
    assert resp.headers["ratelimit-remaining"] == "0"
    assert int(resp.headers["ratelimit-limit"]) >= 1
    assert int(resp.headers["ratelimit-reset"]) >= 1


def test_address_budget_answers_429_and_other_clients_are_unaffected(
    start_gateway: StartGateway, ping_service: ServiceProcess
) -> None:
    gateway = start_gateway(address_budget(ping_service, 3))
    with client_from("127.0.0.2") as greedy, client_from("127.0.0.3") as other:
        passed = [greedy.get(f"{gateway.url}/ping") for _ in range(3)]
        assert [resp.status_code for resp in passed] == [200] * 3
        assert [resp.headers["ratelimit-remaining"] for resp in passed] == ["2", "1", "0"]
        assert_limited(greedy.get(f"{gateway.url}/ping"))
        # A forged X-Forwarded-For from an untrusted peer does not buy a fresh bucket.
        assert_limited(greedy.get(f"{gateway.url}/ping", headers={"X-Forwarded-For": "198.51.100.9"}))
        assert other.get(f"{gateway.url}/ping").status_code == 200
        # Probes are never throttled.
        assert greedy.get(f"{gateway.url}/healthz").status_code == 200
        metrics = greedy.get(f"{gateway.metrics_url}/metrics").text
        assert 'gateway_edge_rejections_total{reason="rate_limit_address"} 2.0' in metrics


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(
    start_gateway: StartGateway, ping_service: ServiceProcess
) -> None:
    gateway = start_gateway(address_budget(ping_service, 2, TRUSTED_PROXIES="127.0.0.4/32"))
    with client_from("127.0.0.4") as proxy:
        first = {"X-Forwarded-For": "198.51.100.1"}
        assert [proxy.get(f"{gateway.url}/ping", headers=first).status_code for _ in range(2)] == [200, 200]
        assert_limited(proxy.get(f"{gateway.url}/ping", headers=first))
        # The rightmost untrusted hop is the client; what it wrote to the left is ignored.
        spoofed = {"X-Forwarded-For": "203.0.113.5, 198.51.100.1"}
        assert_limited(proxy.get(f"{gateway.url}/ping", headers=spoofed))
        second = {"X-Forwarded-For": "198.51.100.2"}
        assert proxy.get(f"{gateway.url}/ping", headers=second).status_code == 200


def test_ipv6_clients_in_one_64_share_a_budget(start_gateway: StartGateway, ping_service: ServiceProcess) -> None:
    # A host on IPv6 holds a whole /64: rotating through its addresses buys no fresh bucket.
    # This machine has no routed IPv6, so the v6 clients arrive through a trusted proxy.
    gateway = start_gateway(address_budget(ping_service, 2, TRUSTED_PROXIES="127.0.0.14/32"))
    with client_from("127.0.0.14") as proxy:

        def ping_from(client: str) -> httpx.Response:
            return proxy.get(f"{gateway.url}/ping", headers={"X-Forwarded-For": client})

        assert ping_from("2001:db8:5:6::1").status_code == 200
        assert ping_from("2001:db8:5:6:ffff:1:2:3").status_code == 200
        assert_limited(ping_from("2001:db8:5:6::99"))
        assert ping_from("2001:db8:5:7::1").status_code == 200  # the next /64 is someone else
        # Malformed entries are skipped: the trusted proxy's rightmost entry still decides.
        assert_limited(ping_from("not-an-ip, 2001:db8:5:6::7, garbage"))


def test_login_budget_is_stricter_and_separate(
    start_gateway: StartGateway, ping_service: ServiceProcess, echo_upstream: ServiceProcess
) -> None:
    gateway = start_gateway(
        {
            "AUTH_URLS": echo_upstream.url,
            "PING_URLS": ping_service.url,
            "RATE_LIMIT_LOGIN_PER_SECOND": SLOW,
            "RATE_LIMIT_LOGIN_BURST": "2",
        }
    )
    with client_from("127.0.0.5") as client:
        assert client.post(f"{gateway.url}/auth/token", data={"grant_type": "x"}).status_code == 200
        assert client.post(f"{gateway.url}/auth/authorize", data={"email": "a"}).status_code == 200
        assert_limited(client.post(f"{gateway.url}/auth/token", data={"grant_type": "x"}))
        # The login form itself (GET) and every other route stay open to this client.
        assert client.get(f"{gateway.url}/auth/authorize").status_code == 200
        assert client.get(f"{gateway.url}/ping").status_code == 200
    with client_from("127.0.0.6") as other:
        assert other.post(f"{gateway.url}/auth/token", data={"grant_type": "x"}).status_code == 200


def test_registration_and_token_endpoints_share_the_login_budget(
    start_gateway: StartGateway, echo_upstream: ServiceProcess
) -> None:
    # Each registration costs auth a 64 MiB argon2 hash: a flood from one address is cut
    # at the edge, whatever spelling of the path it uses; another address is unaffected.
    gateway = start_gateway(
        {"AUTH_URLS": echo_upstream.url, "RATE_LIMIT_LOGIN_PER_SECOND": SLOW, "RATE_LIMIT_LOGIN_BURST": "3"}
    )
    account = {"email": "flood@example.com", "password": "correct horse battery"}
    with client_from("127.0.0.11") as flooder:
        passed = [flooder.post(f"{gateway.url}/auth/register", json=account) for _ in range(3)]
        assert [resp.status_code for resp in passed] == [200] * 3
        assert_limited(flooder.post(f"{gateway.url}/auth/register", json=account))
        assert_limited(flooder.post(f"{gateway.url}/auth/register/", json=account))
        assert_limited(flooder.post(f"{gateway.url}//auth//register", json=account))
        assert_limited(flooder.post(f"{gateway.url}/auth/revoke", data={"token": "x"}))
        assert_limited(flooder.post(f"{gateway.url}/auth/introspect", data={"token": "x"}))
        assert flooder.get(f"{gateway.url}/auth/register").status_code == 200  # only POSTs count
        metrics = flooder.get(f"{gateway.metrics_url}/metrics").text
        assert 'gateway_edge_rejections_total{reason="rate_limit_login"} 5.0' in metrics
    with client_from("127.0.0.12") as other:
        assert other.post(f"{gateway.url}/auth/register", json=account).status_code == 200
        assert other.post(f"{gateway.url}/auth/introspect", data={"token": "x"}).status_code == 200
        assert other.post(f"{gateway.url}/auth/revoke", data={"token": "x"}).status_code == 200
        assert_limited(other.post(f"{gateway.url}/auth/token", data={"grant_type": "x"}))


def test_exempt_addresses_are_never_limited(start_gateway: StartGateway, ping_service: ServiceProcess) -> None:
    gateway = start_gateway(address_budget(ping_service, 1, RATE_LIMIT_EXEMPT="127.0.0.7/32"))
    with client_from("127.0.0.7") as client:
        assert {client.get(f"{gateway.url}/ping").status_code for _ in range(5)} == {200}


async def test_subject_budget_limits_one_user_not_another(
    start_gateway: StartGateway, suite: Suite, alice: User, bob: User
) -> None:
    gateway = start_gateway(suite_upstreams(suite, RATE_LIMIT_SUBJECT_PER_SECOND=SLOW, RATE_LIMIT_SUBJECT_BURST="2"))
    alice_headers = {"Authorization": f"Bearer {alice.token}"}
    # Alice from two addresses shares one budget: it follows her token, not her address.
    with client_from("127.0.0.8") as first, client_from("127.0.0.9") as second:
        assert first.get(f"{gateway.url}/todos", headers=alice_headers).status_code == 200
        assert second.get(f"{gateway.url}/todos", headers=alice_headers).status_code == 200
        assert_limited(first.get(f"{gateway.url}/todos", headers=alice_headers))
        bob_resp = first.get(f"{gateway.url}/todos", headers={"Authorization": f"Bearer {bob.token}"})
        assert bob_resp.status_code == 200


def redis_is_running() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


@pytest.mark.skipif(not redis_is_running(), reason="no Redis on 127.0.0.1:6379")
def test_gateways_sharing_redis_share_the_budget(start_gateway: StartGateway, ping_service: ServiceProcess) -> None:
    # Redis outlives the test: a random client address (forwarded by a trusted proxy)
    # gives this run a bucket of its own.
    env = address_budget(ping_service, 3, REDIS_URL="redis://127.0.0.1:6379/0", TRUSTED_PROXIES="127.0.0.10/32")
    one, two = start_gateway(env), start_gateway(env)
    client_ip = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    headers = {"X-Forwarded-For": client_ip}
    with client_from("127.0.0.10") as client:
        statuses = [client.get(f"{gw.url}/ping", headers=headers).status_code for gw in (one, two, one)]
        assert statuses == [200, 200, 200]
        assert_limited(client.get(f"{two.url}/ping", headers=headers))
        assert client.get(f"{one.url}/ping", headers={"X-Forwarded-For": "198.19.0.1"}).status_code == 200


def test_redis_down_lets_requests_pass(start_gateway: StartGateway, ping_service: ServiceProcess) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    gateway = start_gateway(address_budget(ping_service, 1, REDIS_URL=f"redis://127.0.0.1:{dead_port}/0"))
    assert {httpx.get(f"{gateway.url}/ping").status_code for _ in range(3)} == {200}


# The arithmetic, without processes.


def test_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    budget = Budget("t", per_second=2.0, burst=4)
    tokens, decision = refill(0.0, 0.25, budget)
    assert not decision.allowed and decision.retry_after == pytest.approx(0.25)
    tokens, decision = refill(tokens, 0.25, budget)
    assert decision.allowed and tokens == pytest.approx(0.0)
    tokens, decision = refill(tokens, 100.0, budget)
    assert decision.allowed and tokens == pytest.approx(3.0) and decision.remaining == 3


async def test_memory_buckets_forget_full_buckets_past_their_size() -> None:
    now = [0.0]
    buckets = MemoryBuckets(max_keys=2, clock=lambda: now[0])
    budget = Budget("t", per_second=1.0, burst=1)
    assert (await buckets.take("a", budget)).allowed
    assert not (await buckets.take("a", budget)).allowed
    now[0] = 10.0
    await buckets.take("b", budget)
    await buckets.take("c", budget)  # past max_keys: "a" is full again and goes
    assert (await buckets.take("a", budget)).allowed
