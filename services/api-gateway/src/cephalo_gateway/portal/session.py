"""The portal's cookie: the gateway session it signed in with, sealed with an HMAC.

The browser never holds the API's own session cookie: `cephalo_portal` carries it (path
`/app`, HttpOnly, SameSite=Strict) with the session's CSRF token, which every portal form
repeats in a hidden field. Signing out ends the gateway session, so a stolen portal cookie
stops working with it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import asdict, dataclass

COOKIE = "cephalo_portal"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-portal-csrf-token"


@dataclass(frozen=True)
class PortalSession:
    gateway_cookie: str
    csrf_token: str
    username: str


def portal_key(session_key: bytes) -> bytes:
    """A key of its own, derived from the gateway's session key."""
    return hmac.new(session_key, b"cephalo-portal-cookie", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def seal(session: PortalSession, key: bytes) -> str:
    payload = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
    signature = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}"


def unseal(value: str | None, key: bytes) -> PortalSession | None:
    """The session in a cookie, or None when it is absent, malformed or tampered with."""
    if not value or value.count(".") != 1:
        return None
    payload, signature = value.split(".")
    expected = _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        return None
    try:
        fields = json.loads(_unb64(payload))
        return PortalSession(
            gateway_cookie=str(fields["gateway_cookie"]),
            csrf_token=str(fields["csrf_token"]),
            username=str(fields["username"]),
        )
    except (ValueError, KeyError, TypeError):
        return None


def csrf_ok(session: PortalSession, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(session.csrf_token, str(presented))
