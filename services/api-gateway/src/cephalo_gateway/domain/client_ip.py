"""The client's address: `X-Forwarded-For` is believed only from configured proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """`10.0.0.0/8`, `192.168.1.5` or `::1`; raises ValueError on anything else."""
    return tuple(ipaddress.ip_network(value.strip(), strict=False) for value in values)


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> str:
    """The rightmost address not belonging to a trusted proxy (Octopus's rule).

    The chain is the header's addresses then the peer; walking from the right, every hop a
    trusted proxy added is believed, and the first untrusted one is the client. Without a
    trusted peer the header is ignored: anyone can write it.
    """
    peer = peer or "unknown"
    if not trusted or not _trusted(peer, trusted):
        return peer
    chain = [part.strip() for value in forwarded_for for part in value.split(",") if part.strip()]
    for address in reversed(chain):
        if not _trusted(address, trusted):
            try:
                return str(ipaddress.ip_address(address))
            except ValueError:
                return peer
    return chain[0] if chain else peer
