"""Pure rules of the gateway: the space cache and which headers cross it."""

from __future__ import annotations

import uuid

from cephalo_gateway.domain.audit import is_state_changing
from cephalo_gateway.domain.audit import storable as audit_storable
from cephalo_gateway.domain.headers import has_body, request_headers, response_headers
from cephalo_gateway.domain.spaces import SpaceCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_cached_slug_expires_after_its_ttl() -> None:
    clock, space_id = Clock(), uuid.uuid4()
    cache = SpaceCache(30, clock=clock)
    cache.put("Default", space_id)
    clock.now += 29.9
    assert cache.get("default") == space_id
    clock.now += 0.1
    assert cache.get("default") is None


def test_a_zero_ttl_caches_nothing() -> None:
    cache = SpaceCache(0)
    cache.put("default", uuid.uuid4())
    assert cache.get("default") is None


def test_identity_and_hop_by_hop_request_headers_stay_at_the_gateway() -> None:
    sent = request_headers(
        [
            ("Content-Type", "application/json"),
            ("Content-Length", "12"),
            ("Accept", "application/json"),
            ("Authorization", "Bearer secret"),
            ("Cookie", "session=1"),
            ("Connection", "keep-alive, X-Custom"),
            ("X-Custom", "1"),
            ("X-Request-Id", "spoofed"),
            ("Transfer-Encoding", "chunked"),
        ],
        request_id="gw-1",
        client_host="10.0.0.7",
        scheme="https",
        host="cephalo.example",
    )
    assert dict(sent) == {
        "content-type": "application/json",
        "content-length": "12",
        "accept": "application/json",
        "accept-encoding": "identity",
        "x-request-id": "gw-1",
        "x-forwarded-for": "10.0.0.7",
        "x-forwarded-proto": "https",
        "x-forwarded-host": "cephalo.example",
    }


def test_response_headers_lose_hop_by_hop_ones_and_internal_locations() -> None:
    kept = response_headers(
        [
            ("content-type", "application/problem+json"),
            ("content-length", "80"),
            ("transfer-encoding", "chunked"),
            ("connection", "close"),
            ("server", "uvicorn"),
            ("date", "Sat, 21 Nov 2026 10:00:00 GMT"),
            ("location", "http://127.0.0.1:8081/api/v1/spaces/x"),
            ("set-cookie", "a=1"),
            ("set-cookie", "b=2"),
        ],
        upstream_base_url="http://127.0.0.1:8081",
    )
    assert kept == [
        ("content-type", "application/problem+json"),
        ("content-length", "80"),
        ("location", "/api/v1/spaces/x"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]


def test_only_requests_that_announce_a_body_stream_one() -> None:
    assert has_body([("content-length", "5")])
    assert has_body([("transfer-encoding", "chunked")])
    assert not has_body([("content-length", "0")])
    assert not has_body([("accept", "*/*")])


def test_only_mutating_methods_are_audited() -> None:
    assert all(is_state_changing(m) for m in ("POST", "put", "PATCH", "DELETE"))
    assert not any(is_state_changing(m) for m in ("GET", "HEAD", "OPTIONS"))


def test_audit_text_keeps_a_nul_as_the_replacement_character() -> None:
    assert audit_storable("/api/v1/spaces/\x00/x") == "/api/v1/spaces/\ufffd/x"
    assert audit_storable(None) is None
