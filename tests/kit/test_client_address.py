"""The kit's client address and throttle key: one answer for the gateway and the auth service."""

from __future__ import annotations

import pytest

from services.kit.client_address import client_address, parse_networks, throttle_key


def test_forwarded_for_is_believed_only_from_a_trusted_proxy() -> None:
    local = parse_networks(["127.0.0.1"])
    assert client_address("127.0.0.1", "203.0.113.9", local) == "203.0.113.9"
    assert client_address("127.0.0.1", "203.0.113.9, 127.0.0.1", local) == "203.0.113.9"
    assert client_address("198.51.100.4", "203.0.113.9", local) == "198.51.100.4"
    assert client_address("127.0.0.1", None, local) == "127.0.0.1"
    assert client_address("203.0.113.1", "198.51.100.1", ()) == "203.0.113.1"
    docker = parse_networks(["172.16.0.0/12"])
    assert client_address("172.18.0.5", "203.0.113.9, 172.18.0.4", docker) == "203.0.113.9"
    assert client_address("203.0.113.50", "172.18.0.4", docker) == "203.0.113.50"


def test_the_rightmost_untrusted_hop_is_the_client_over_every_header_line() -> None:
    trusted = parse_networks(["10.0.0.0/8"])
    assert client_address("10.0.0.2", ["198.51.100.1, 10.0.0.3"], trusted) == "198.51.100.1"
    assert client_address("10.0.0.2", ["203.0.113.9", "198.51.100.1"], trusted) == "198.51.100.1"
    assert client_address("10.0.0.2", [], trusted) == "10.0.0.2"
    # Every hop a trusted proxy: the request started at the left-most of them.
    assert client_address("10.0.0.2", ["10.0.0.9, 10.0.0.3"], trusted) == "10.0.0.9"


@pytest.mark.parametrize(
    ("forwarded_for", "client"),
    [
        ("not-an-ip", "127.0.0.1"),  # nothing usable: the proxy itself
        ("unknown, 203.0.113.9", "203.0.113.9"),
        ("203.0.113.9, garbage", "203.0.113.9"),  # skipped, not chosen, on either side
        ("203.0.113.9:4711", "127.0.0.1"),  # ip:port is not a bare address
        ("198.51.100.7, , 203.0.113.9,", "203.0.113.9"),  # empty elements
        ("2001:DB8::0001", "2001:db8::1"),  # canonical text
    ],
)
def test_malformed_forwarded_for_entries_are_ignored(forwarded_for: str, client: str) -> None:
    assert client_address("127.0.0.1", forwarded_for, parse_networks(["127.0.0.1"])) == client


def test_a_dual_stack_peer_matches_its_ipv4_trusted_proxy() -> None:
    assert client_address("::ffff:127.0.0.1", "203.0.113.9", parse_networks(["127.0.0.1"])) == "203.0.113.9"


def test_a_peer_that_is_not_an_address_is_kept_and_not_followed() -> None:
    assert client_address(None, "203.0.113.9", parse_networks(["0.0.0.0/0"])) == "unknown"
    assert client_address("/run/gw.sock", "203.0.113.9", parse_networks(["0.0.0.0/0"])) == "/run/gw.sock"


def test_throttle_key_counts_ipv6_by_its_64_and_ipv4_by_itself() -> None:
    assert throttle_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert throttle_key("2001:db8:1:3::1") == "2001:db8:1:3::/64"
    assert throttle_key("fe80::1%eth0") == "fe80::/64"
    assert throttle_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert throttle_key("192.0.2.1") == "192.0.2.1"
    assert throttle_key("192.0.2.2") != throttle_key("192.0.2.1")
    assert throttle_key("unknown") == "unknown"
