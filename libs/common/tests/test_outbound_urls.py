"""The outbound guard, table-driven: what a user-supplied URL may be and where it may lead."""

from __future__ import annotations

import ipaddress

import pytest

from cephalo_common.urls import (
    Destination,
    OutboundPolicy,
    OutboundSettings,
    UrlRefused,
    check_and_resolve,
    check_url,
    is_internal,
    resolve,
)

STRICT = OutboundPolicy()
LOOPBACK_ALLOWED = OutboundPolicy.from_settings(OutboundSettings(allow=["127.0.0.1/32"]))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://agent.example.com:10933", "scheme"),
        ("file:///etc/passwd", "scheme"),
        ("gopher://agent.example.com", "scheme"),
        ("https://user:pw@agent.example.com", "credentials"),
        ("https://user@agent.example.com", "credentials"),
        ("https://", "no host"),
        ("https://agent.example.com:99999", "port"),
        ("https://agent.example.com/\n", "control"),
        ("https://agent .example.com", "control"),
        ("https://" + "a" * 3000 + ".example.com", "longer"),
        ("https://127.0.0.1:10933", "internal"),
        ("https://127.1.2.3", "internal"),
        ("https://[::1]:10933", "internal"),
        ("https://0.0.0.0", "internal"),
        ("https://169.254.169.254/latest/meta-data", "internal"),
        ("https://[fd00:ec2::254]", "internal"),
        ("https://10.0.0.5", "internal"),
        ("https://172.16.3.4", "internal"),
        ("https://192.168.1.1", "internal"),
        ("https://100.64.0.1", "internal"),
        ("https://[fe80::1]", "internal"),
        ("https://[::ffff:127.0.0.1]", "internal"),
        ("https://[::ffff:169.254.169.254]", "internal"),
        ("https://[64:ff9b::a9fe:a9fe]", "internal"),
        ("https://224.0.0.1", "internal"),
        ("https://[::1", "well formed"),
        ("https://[zz]:443", "well formed"),
        ("https://[::1]x:443", "well formed"),
        ("https://a:b:c", "port"),
    ],
)
def test_a_url_is_refused_by_its_shape_alone(url: str, reason: str) -> None:
    with pytest.raises(UrlRefused) as refused:
        check_url(url, STRICT, field_name="body.listening_url")
    assert reason in refused.value.detail
    assert refused.value.status_code == 422
    assert refused.value.errors[0]["field"] == "body.listening_url"


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://agent.example.com", "agent.example.com", 443),
        ("https://agent.example.com:10933/", "agent.example.com", 10933),
        ("HTTPS://Agent.Example.com.:10933", "agent.example.com", 10933),
        ("https://8.8.8.8:10933", "8.8.8.8", 10933),
        ("https://[2001:4860:4860::8888]:10933", "2001:4860:4860::8888", 10933),
    ],
)
def test_a_public_url_passes_the_shape_check(url: str, host: str, port: int) -> None:
    assert check_url(url, STRICT) == Destination("https", host, port)


@pytest.mark.parametrize(
    ("allow", "url"),
    [
        (["127.0.0.1/32"], "https://127.0.0.1:10933"),
        (["10.0.0.0/8"], "https://10.1.2.3"),
        (["fd00::/8"], "https://[fd00::7]"),
        (["agent.internal"], "https://AGENT.internal:10933"),
    ],
)
def test_the_operators_allow_list_admits_internal_places(allow: list[str], url: str) -> None:
    policy = OutboundPolicy.from_settings(OutboundSettings(allow=allow))
    check_url(url, policy)


def test_an_allowed_network_admits_only_itself() -> None:
    policy = OutboundPolicy.from_settings(OutboundSettings(allow=["10.0.0.0/8"]))
    with pytest.raises(UrlRefused):
        check_url("https://169.254.169.254", policy)


def test_schemes_are_per_use() -> None:
    policy = OutboundPolicy.from_settings(OutboundSettings(), schemes=("http", "https"))
    assert check_url("http://example.com", policy).port == 80


@pytest.mark.parametrize(
    ("address", "internal"),
    [
        ("8.8.8.8", False),
        ("2606:4700::1111", False),
        ("127.0.0.1", True),
        ("169.254.169.254", True),
        ("fd00:ec2::254", True),
        ("::", True),
        ("::ffff:10.0.0.1", True),
        ("64:ff9b::808:808", False),
        ("64:ff9b::7f00:1", True),
        ("239.255.255.250", True),
    ],
)
def test_internal_addresses(address: str, internal: bool) -> None:
    assert is_internal(ipaddress.ip_address(address)) is internal


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost:10933",
        "https://2130706433:10933",
        "https://0x7f.1:10933",
        "https://017700000001:10933",
    ],
)
async def test_names_and_odd_spellings_of_loopback_are_refused_once_resolved(url: str) -> None:
    destination = check_url(url, STRICT)
    with pytest.raises(UrlRefused, match="internal address"):
        await resolve(destination, STRICT)


async def test_an_allow_listed_loopback_resolves_to_the_addresses_to_dial() -> None:
    destination = await check_and_resolve("https://127.0.0.1:10933", LOOPBACK_ALLOWED)
    assert destination.addresses == ("127.0.0.1",)


async def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(UrlRefused, match="does not resolve"):
        await check_and_resolve("https://no-such-host.invalid", STRICT)
