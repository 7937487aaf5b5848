"""Short-lived signed identity tokens for calls between services.

The api-gateway authenticates a person or a build server, then tells the service it calls
who that is in `X-Cephalo-Identity: <token>`. The token is a compact JSON claim set and an
HMAC-SHA256 over it, both base64url without padding, joined by a dot:

    base64url({"v":1,"aud":"release-service","iat":…,"exp":…,"idt":{…}}) . base64url(mac)

It is bound to one audience (the receiving service's name) and lives for seconds, so a
token captured from one service cannot be replayed against another, or for long.
Verification is constant-time and every failure raises a subclass of `InvalidToken`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

HEADER = "X-Cephalo-Identity"
VERSION = 1
MAX_TOKEN_LENGTH = 8192
DEFAULT_LEEWAY_SECONDS = 5


class InvalidToken(ValueError):
    """The token cannot be trusted; the message says why (never the secret)."""


class MalformedToken(InvalidToken):
    pass


class BadSignature(InvalidToken):
    pass


class ExpiredToken(InvalidToken):
    pass


class WrongAudience(InvalidToken):
    pass


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    if not text or any(c not in _ALPHABET for c in text):
        raise MalformedToken("the token is not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise MalformedToken("the token is not base64url") from error


_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _mac(secret: bytes, payload: str) -> bytes:
    return hmac.new(secret, payload.encode("ascii"), hashlib.sha256).digest()


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or len(secret) < 16:
        raise ValueError("the internal token secret must be at least 16 bytes")


def sign(
    identity: Mapping[str, Any],
    audience: str,
    secret: bytes,
    ttl_seconds: int = 60,
    *,
    now: float | None = None,
) -> str:
    """A token saying `identity` to `audience`, valid for `ttl_seconds` from `now`."""
    _check_secret(secret)
    if not audience:
        raise ValueError("a token needs an audience")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    issued = int(now if now is not None else time.time())
    claims = {
        "v": VERSION,
        "aud": audience,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "idt": dict(identity),
    }
    payload = _b64encode(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64encode(_mac(secret, payload))}"


def _claims(payload: str) -> dict[str, Any]:
    try:
        claims = json.loads(_b64decode(payload))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise MalformedToken("the token's claims are not JSON") from error
    if not isinstance(claims, dict) or claims.get("v") != VERSION:
        raise MalformedToken("the token has an unknown version")
    for name, kind in (("aud", str), ("iat", int), ("exp", int), ("idt", dict)):
        if not isinstance(claims.get(name), kind) or isinstance(claims.get(name), bool):
            raise MalformedToken(f"the token's {name!r} claim is missing or invalid")
    return claims


def verify(
    token: str,
    audience: str,
    secret: bytes,
    *,
    now: float | None = None,
    leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
) -> dict[str, Any]:
    """The identity inside `token`, once its signature, audience and expiry hold."""
    _check_secret(secret)
    if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or token.count(".") != 1:
        raise MalformedToken("the token is not <claims>.<signature>")
    payload, signature = token.split(".")
    expected = _mac(secret, payload)
    if not hmac.compare_digest(expected, _b64decode(signature)):
        raise BadSignature("the token's signature does not match")
    claims = _claims(payload)
    if not hmac.compare_digest(claims["aud"].encode(), audience.encode()):
        raise WrongAudience(f"the token is for {claims['aud']!r}, not {audience!r}")
    current = now if now is not None else time.time()
    if current > claims["exp"] + leeway_seconds:
        raise ExpiredToken("the token has expired")
    if claims["iat"] > current + leeway_seconds:
        raise ExpiredToken("the token was issued in the future")
    identity: dict[str, Any] = claims["idt"]
    return identity
