"""The outbound guard: a URL a user gave us is only dialled when it leads to the public network
or to a place the operator allow-listed.

Without it, anyone allowed to register a machine could make a service call its own loopback
ports, the pod network or the cloud metadata endpoint (169.254.169.254) and read the answer in
an error message (SSRF). Checked twice: when the URL is accepted (`check_url` + `resolve`, a 4xx
problem and nothing written) and when it is dialled (`resolve` again), because a host name can
point elsewhere by then (DNS rebinding).
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from pydantic import BaseModel, Field

from cephalo_common.errors import Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_MAX_URL_LENGTH = 2048
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_RESOLVE_TIMEOUT_SECONDS = 5.0
_NETLOC = re.compile(r"(\[[0-9A-Za-z:.%_-]+\]|[^\[\]:@/?#]+)(:[0-9]{1,5})?")
LOOPBACK = ("127.0.0.0/8", "::1/128")
"""What the dev and test stacks allow-list: their agents listen on this machine."""


class OutboundSettings(BaseModel):
    """`CEPHALO_<SERVICE>_OUTBOUND__ALLOW='["10.20.0.0/16", "agents.corp.example"]'`."""

    allow: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR) or host names a user-supplied URL may reach although "
        "they are not public: loopback, private, link-local (cloud metadata), unique-local.",
    )
    max_url_length: int = Field(DEFAULT_MAX_URL_LENGTH, ge=16, le=65536)


class UrlRefused(Invalid):
    """422: the URL is malformed or leads somewhere the operator did not allow."""

    title = "URL refused"
    type_slug = "url-refused"


@dataclass(frozen=True)
class OutboundPolicy:
    """What a user-supplied URL may be: its schemes and the non-public places admitted."""

    schemes: frozenset[str] = frozenset({"https"})
    networks: tuple[IPNetwork, ...] = ()
    hosts: frozenset[str] = frozenset()
    max_length: int = DEFAULT_MAX_URL_LENGTH

    @classmethod
    def from_settings(
        cls, settings: OutboundSettings, schemes: Iterable[str] = ("https",)
    ) -> OutboundPolicy:
        networks, hosts = _split_allow(settings.allow)
        return cls(frozenset(schemes), networks, hosts, settings.max_url_length)

    def admits(self, address: IPAddress) -> bool:
        return not is_internal(address) or any(address in net for net in self.networks)


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    addresses: tuple[str, ...] = field(default=())


def _split_allow(entries: Sequence[str]) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    networks: list[IPNetwork] = []
    hosts: set[str] = set()
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            hosts.add(entry.strip().lower().rstrip("."))
    return tuple(networks), frozenset(hosts)


def is_internal(address: IPAddress) -> bool:
    """Not on the public internet: loopback, private, link-local, unique-local, shared,
    reserved, unspecified, multicast, also when wrapped in an IPv4-mapped or NAT64 address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return is_internal(address.ipv4_mapped)
        if address in _NAT64:
            return is_internal(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return not address.is_global or address.is_multicast


def _refused(field_name: str, message: str) -> UrlRefused:
    return UrlRefused(message, errors=[{"field": field_name, "message": message}])


def check_url(url: str, policy: OutboundPolicy, *, field_name: str = "url") -> Destination:
    """The URL's shape: bounded, an allowed scheme, a host, no credentials, no raw internal IP.

    Host names are resolved by `resolve`; this part needs no network."""
    if len(url) > policy.max_length:
        raise _refused(field_name, f"the URL is longer than {policy.max_length} characters")
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        raise _refused(field_name, "the URL contains whitespace or control characters")
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:
        raise _refused(field_name, "the URL is not well formed (its host cannot be read)") from None
    if parts.scheme.lower() not in policy.schemes:
        allowed = ", ".join(sorted(policy.schemes))
        raise _refused(field_name, f"the URL's scheme must be one of: {allowed}")
    if "@" in parts.netloc:
        raise _refused(field_name, "the URL must not carry credentials (user:password@)")
    host = (hostname or "").rstrip(".")
    if not host:
        raise _refused(field_name, "the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        raise _refused(field_name, "the URL's port is not a number from 0 to 65535") from None
    if not _NETLOC.fullmatch(parts.netloc):
        raise _refused(field_name, "the URL is not well formed (host[:port] expected)")
    literal = _ip_literal(host)
    if literal is not None:
        check_address(literal, policy, host=host, field_name=field_name)
    return Destination(parts.scheme.lower(), host, port)


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None


def check_address(
    address: IPAddress, policy: OutboundPolicy, *, host: str, field_name: str = "url"
) -> None:
    if host.lower() in policy.hosts or policy.admits(address):
        return
    raise _refused(
        field_name,
        f"{host} leads to {address}, an internal address; the operator has not allow-listed "
        "it (outbound.allow)",
    )


async def resolve(
    destination: Destination, policy: OutboundPolicy, *, field_name: str = "url"
) -> Destination:
    """Every address the host resolves to must be admitted; returns them, to dial one of
    those rather than resolve again."""
    try:
        async with asyncio.timeout(_RESOLVE_TIMEOUT_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(
                destination.host, destination.port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError, UnicodeError):
        raise _refused(field_name, f"{destination.host} does not resolve") from None
    addresses = tuple(dict.fromkeys(str(info[4][0]) for info in infos))
    if not addresses:
        raise _refused(field_name, f"{destination.host} does not resolve")
    for text in addresses:
        address = _ip_literal(text)
        if address is None:
            raise _refused(field_name, f"{destination.host} resolved to {text!r}")
        check_address(address, policy, host=destination.host, field_name=field_name)
    return Destination(destination.scheme, destination.host, destination.port, addresses)


async def check_and_resolve(
    url: str, policy: OutboundPolicy, *, field_name: str = "url"
) -> Destination:
    """Both checks, as the API runs them when it accepts a URL."""
    return await resolve(
        check_url(url, policy, field_name=field_name), policy, field_name=field_name
    )
