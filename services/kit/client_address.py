"""Who the client is, and which budget it spends: one answer for the gateway and every service.

``client_address(peer, forwarded_for, trusted)`` is the peer's address, unless the peer is
a trusted proxy. Then the ``X-Forwarded-For`` entries (every header line, each split at
commas) are walked from the right — the end the trusted proxies appended to — and the
first address that is not itself a trusted proxy is the client. When every entry is a
trusted proxy, the left-most one (the origin of the chain) is the client.

Malformed entries are ignored wherever they are, the same way everywhere: an entry that is
not a bare IPv4 or IPv6 address (a name, ``unknown``, an ``ip:port``, garbage, an empty
element) is skipped, never chosen as the client and never a reason to distrust the rest.
A client cannot pick its own budget with them: what a trusted proxy appends is on the
right of anything the client sent. A header from an untrusted peer is not read at all.

``throttle_key(address)`` is what rate limits and login throttles count by. An IPv6 host
usually holds a whole /64 (SLAAC, privacy addresses), so an IPv6 address counts as its
/64; an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, a dual-stack socket) as its IPv4
address; an IPv4 address as itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

IPV6_THROTTLE_PREFIX = 64


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """Addresses or CIDRs (``10.0.0.0/8``, ``127.0.0.1``) as networks; ValueError on a typo."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def parse_address(text: str) -> Address | None:
    """A bare IPv4/IPv6 address (an IPv6 zone is allowed), or None for anything else."""
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def in_networks(address: str, networks: Sequence[Network]) -> bool:
    """Is ``address`` in one of ``networks``? False for anything that is not an address."""
    ip = parse_address(address)
    return ip is not None and _in(ip, networks)


def client_address(peer: str | None, forwarded_for: Iterable[str] | str | None, trusted: Sequence[Network]) -> str:
    """The client's address (canonical text), following ``X-Forwarded-For`` only through trusted proxies.

    ``forwarded_for`` is every ``X-Forwarded-For`` header value (a single string is one value).
    ``peer`` is the socket's peer; when it is not an address (None, a unix socket) it is
    returned as it is (``"unknown"`` for None) and no header is believed.
    """
    peer_ip = parse_address(peer) if peer else None
    if peer_ip is None:
        return peer or "unknown"
    if not trusted or not _in(peer_ip, trusted) or not forwarded_for:
        return str(peer_ip)
    values = [forwarded_for] if isinstance(forwarded_for, str) else list(forwarded_for)
    hops = [ip for value in values for part in value.split(",") if (ip := parse_address(part)) is not None]
    client = peer_ip
    for hop in reversed(hops):
        client = hop
        if not _in(hop, trusted):
            break
    return str(client)


def throttle_key(address: str) -> str:
    """The budget an address spends: IPv6 → its /64, IPv4-mapped IPv6 → the IPv4 address, IPv4 → itself.

    Anything that is not an address (``"unknown"``, a unix socket path) is its own key.
    """
    ip = parse_address(address)
    if ip is None:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), IPV6_THROTTLE_PREFIX), strict=False))
    return str(ip)


def _in(ip: Address, networks: Sequence[Network]) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # a dual-stack socket reports an IPv4 proxy as ::ffff:a.b.c.d
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(ip.compressed.split("%", 1)[0])
    return any(ip in network for network in networks)
