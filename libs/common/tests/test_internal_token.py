"""Internal identity tokens: what verifies, and every way a token is refused."""

from __future__ import annotations

import base64
import json

import pytest

from cephalo_common.security import internal_token
from cephalo_common.security.internal_token import (
    BadSignature,
    ExpiredToken,
    InvalidToken,
    MalformedToken,
    WrongAudience,
    sign,
    verify,
)

SECRET = b"a-test-secret-of-32-bytes-length"
IDENTITY = {"sub": "0190-user", "name": "alice", "service_account": False}
NOW = 1_800_000_000.0


def test_a_signed_identity_verifies_for_its_audience() -> None:
    token = sign(IDENTITY, "release-service", SECRET, now=NOW)
    assert verify(token, "release-service", SECRET, now=NOW + 30) == IDENTITY


def test_the_token_is_compact_and_url_safe() -> None:
    token = sign(IDENTITY, "release-service", SECRET, now=NOW)
    assert token.count(".") == 1
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_another_audience_is_refused() -> None:
    token = sign(IDENTITY, "release-service", SECRET, now=NOW)
    with pytest.raises(WrongAudience):
        verify(token, "package-feed", SECRET, now=NOW)


def test_an_expired_token_is_refused_after_the_leeway() -> None:
    token = sign(IDENTITY, "release-service", SECRET, ttl_seconds=60, now=NOW)
    assert verify(token, "release-service", SECRET, now=NOW + 64) == IDENTITY
    with pytest.raises(ExpiredToken):
        verify(token, "release-service", SECRET, now=NOW + 66)


def test_a_token_from_the_future_is_refused() -> None:
    token = sign(IDENTITY, "release-service", SECRET, now=NOW + 600)
    with pytest.raises(ExpiredToken):
        verify(token, "release-service", SECRET, now=NOW)


def test_another_secret_is_a_bad_signature() -> None:
    token = sign(IDENTITY, "release-service", SECRET, now=NOW)
    with pytest.raises(BadSignature):
        verify(token, "release-service", b"another-secret-of-enough-length!", now=NOW)


def test_changed_claims_break_the_signature() -> None:
    token = sign(IDENTITY, "release-service", SECRET, now=NOW)
    payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["idt"]["name"] = "mallory"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(BadSignature):
        verify(f"{forged}.{signature}", "release-service", SECRET, now=NOW)


@pytest.mark.parametrize(
    "token",
    ["", "no-dot", "a.b.c", "!!!.???", "x" * 9000, "eyJ2IjoxfQ.%%%"],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    with pytest.raises(MalformedToken):
        verify(token, "release-service", SECRET, now=NOW)


def test_a_validly_signed_token_with_bad_claims_is_malformed() -> None:
    payload = base64.urlsafe_b64encode(b'{"v":1,"aud":"x"}').rstrip(b"=").decode()
    mac = internal_token._mac(SECRET, payload)
    token = f"{payload}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(MalformedToken):
        verify(token, "x", SECRET, now=NOW)


def test_every_refusal_is_an_invalid_token() -> None:
    for error in (MalformedToken, BadSignature, ExpiredToken, WrongAudience):
        assert issubclass(error, InvalidToken)


def test_short_secrets_and_bad_arguments_are_programming_errors() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        sign(IDENTITY, "release-service", b"short")
    with pytest.raises(ValueError, match="audience"):
        sign(IDENTITY, "", SECRET)
    with pytest.raises(ValueError, match="ttl"):
        sign(IDENTITY, "release-service", SECRET, ttl_seconds=0)


def test_signature_comparison_is_constant_time() -> None:
    """The module compares with `hmac.compare_digest`, never `==`, on secret material."""
    import inspect

    source = inspect.getsource(internal_token.verify)
    assert "compare_digest(expected" in source
