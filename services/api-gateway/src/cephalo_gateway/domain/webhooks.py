"""CI webhooks: who may call a hook (signatures), which deliveries count, which version.

Signatures are checked over the raw body, before any JSON parsing, with constant-time
comparisons. GitHub signs with HMAC-SHA256 in `X-Hub-Signature-256` (the legacy `sha1=`
header alone is refused) and names each delivery in `X-GitHub-Delivery`; GitLab sends a
plain shared token (`X-Gitlab-Token`: no integrity, replayable within the de-duplication
window only) or, newer, a Standard Webhooks signature over `id.timestamp.body`; the
generic form is Cephalo's own HMAC over `timestamp.body`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class Provider(StrEnum):
    GITHUB = "github"
    GITLAB = "gitlab"
    GITLAB_SIGNED = "gitlab-signed"
    GENERIC = "generic"


class HookAction(StrEnum):
    CREATE_RELEASE = "create-release"
    DEPLOY_RELEASE = "deploy-release"


class Rejected(Exception):
    """A delivery that must not act; `status` is what the sender is told."""

    def __init__(self, reason: str, status: int = 401) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


@dataclass(frozen=True)
class Delivery:
    """A delivery whose signature holds: its id (for de-duplication) and its event."""

    delivery_id: str
    event: str


DEFAULT_EVENTS: Mapping[Provider, tuple[str, ...]] = {
    Provider.GITHUB: ("push", "release", "workflow_run"),
    Provider.GITLAB: ("Push Hook", "Tag Push Hook", "Release Hook", "Pipeline Hook"),
    Provider.GITLAB_SIGNED: ("Push Hook", "Tag Push Hook", "Release Hook", "Pipeline Hook"),
    Provider.GENERIC: ("generic",),
}
MAX_DELIVERY_ID_LENGTH = 200


def new_secret(provider: Provider) -> str:
    """Standard Webhooks secrets are `whsec_` + base64 key; the others a random token."""
    if provider is Provider.GITLAB_SIGNED:
        return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    return secrets.token_urlsafe(32)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name.lower())
    return value.strip() if value is not None and value.strip() else None


def _delivery_id(value: str | None, name: str) -> str:
    if value is None:
        raise Rejected(f"the {name} header is missing")
    if len(value) > MAX_DELIVERY_ID_LENGTH:
        raise Rejected(f"the {name} header is too long", 400)
    return value


def _hmac_sha256(key: bytes, message: bytes) -> bytes:
    return hmac.new(key, message, hashlib.sha256).digest()


def _fresh(timestamp: str | None, now: float, max_age_seconds: int) -> None:
    if timestamp is None:
        raise Rejected("the delivery timestamp is missing")
    try:
        sent = int(timestamp)
    except ValueError as error:
        raise Rejected("the delivery timestamp is not a number") from error
    if abs(now - sent) > max_age_seconds:
        raise Rejected("the delivery is stale (timestamp outside the allowed window)")


def verify_github(headers: Mapping[str, str], body: bytes, secret: str) -> Delivery:
    signature = _header(headers, "X-Hub-Signature-256")
    if signature is None:
        if _header(headers, "X-Hub-Signature") is not None:
            raise Rejected("sha1 signatures are not accepted; configure a sha256 secret")
        raise Rejected("the X-Hub-Signature-256 header is missing")
    if not signature.startswith("sha256="):
        raise Rejected("the X-Hub-Signature-256 header is not sha256=<hex>")
    expected = "sha256=" + _hmac_sha256(secret.encode(), body).hex()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Rejected("the signature does not match the body")
    delivery = _delivery_id(_header(headers, "X-GitHub-Delivery"), "X-GitHub-Delivery")
    event = _header(headers, "X-GitHub-Event") or ""
    return Delivery(delivery, event)


def verify_gitlab_token(headers: Mapping[str, str], secret: str) -> Delivery:
    token = _header(headers, "X-Gitlab-Token")
    if token is None:
        raise Rejected("the X-Gitlab-Token header is missing")
    if not hmac.compare_digest(token.encode(), secret.encode()):
        raise Rejected("the X-Gitlab-Token does not match")
    delivery = _header(headers, "X-Gitlab-Event-UUID") or _header(headers, "Idempotency-Key")
    return Delivery(
        _delivery_id(delivery, "X-Gitlab-Event-UUID"), _header(headers, "X-Gitlab-Event") or ""
    )


def _standard_key(secret: str) -> bytes:
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except (binascii.Error, ValueError):
            return secret.encode()
    return secret.encode()


def verify_standard_webhook(
    headers: Mapping[str, str], body: bytes, secret: str, *, now: float, max_age_seconds: int
) -> Delivery:
    """GitLab's signing token (Standard Webhooks): `webhook-signature: v1,<base64>`."""
    message_id = _delivery_id(_header(headers, "webhook-id"), "webhook-id")
    timestamp = _header(headers, "webhook-timestamp")
    _fresh(timestamp, now, max_age_seconds)
    signatures = _header(headers, "webhook-signature")
    if signatures is None:
        raise Rejected("the webhook-signature header is missing")
    signed = f"{message_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(_hmac_sha256(_standard_key(secret), signed)).decode("ascii")
    offered = [part.split(",", 1)[1] for part in signatures.split() if part.startswith("v1,")]
    if not offered:
        raise Rejected("the webhook-signature header has no v1 signature")
    if not any(hmac.compare_digest(expected.encode(), sig.encode()) for sig in offered):
        raise Rejected("the signature does not match the body")
    event = _header(headers, "X-Gitlab-Event") or _header(headers, "webhook-event") or ""
    return Delivery(message_id, event)


def verify_generic(
    headers: Mapping[str, str], body: bytes, secret: str, *, now: float, max_age_seconds: int
) -> Delivery:
    """`X-Cephalo-Signature: sha256=<hex HMAC(secret, "<timestamp>.<body>")>` plus
    `X-Cephalo-Timestamp` (Unix seconds) and a unique `X-Cephalo-Delivery`."""
    timestamp = _header(headers, "X-Cephalo-Timestamp")
    _fresh(timestamp, now, max_age_seconds)
    signature = _header(headers, "X-Cephalo-Signature")
    if signature is None or not signature.startswith("sha256="):
        raise Rejected("the X-Cephalo-Signature header is missing or not sha256=<hex>")
    signed = f"{timestamp}.".encode() + body
    expected = "sha256=" + _hmac_sha256(secret.encode(), signed).hex()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Rejected("the signature does not match the body")
    delivery = _delivery_id(_header(headers, "X-Cephalo-Delivery"), "X-Cephalo-Delivery")
    return Delivery(delivery, _header(headers, "X-Cephalo-Event") or "generic")


def verify(
    provider: Provider,
    headers: Mapping[str, str],
    body: bytes,
    secret: str,
    *,
    now: float,
    max_age_seconds: int,
) -> Delivery:
    """Check a delivery's authenticity; `headers` must have lower-case names."""
    if provider is Provider.GITHUB:
        return verify_github(headers, body, secret)
    if provider is Provider.GITLAB:
        return verify_gitlab_token(headers, secret)
    if provider is Provider.GITLAB_SIGNED:
        return verify_standard_webhook(
            headers, body, secret, now=now, max_age_seconds=max_age_seconds
        )
    return verify_generic(headers, body, secret, now=now, max_age_seconds=max_age_seconds)


# What the delivery asks for --------------------------------------------------------------

FIELD = re.compile(r"\{([A-Za-z0-9_.\-]+)\}")
VERSION = re.compile(r"^[0-9A-Za-z.+\-_]{1,100}$")


def field_value(payload: Any, path: str) -> Any:
    """`release.tag_name` in the payload, or None when any step is missing."""
    node = payload
    for part in path.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _default_template(provider: Provider, event: str, payload: Any) -> str | None:
    if provider is Provider.GITHUB and event == "release":
        return "{release.tag_name}"
    if event in ("Tag Push Hook",) or (
        event == "push" and str(field_value(payload, "ref") or "").startswith("refs/tags/")
    ):
        return "{ref}"
    if event == "Release Hook":
        return "{tag}"
    if provider is Provider.GENERIC:
        return "{version}" if field_value(payload, "version") is not None else None
    return None


def should_act(provider: Provider, event: str, payload: Any, events: tuple[str, ...]) -> bool:
    """Only configured events; a workflow run or pipeline only once it has succeeded."""
    if event not in events:
        return False
    if event == "workflow_run":
        run = field_value(payload, "workflow_run") or {}
        return bool(
            field_value(payload, "action") == "completed"
            and isinstance(run, dict)
            and run.get("conclusion") == "success"
        )
    if event == "Pipeline Hook":
        return bool(field_value(payload, "object_attributes.status") == "success")
    if event == "release" and provider is Provider.GITHUB:
        return bool(field_value(payload, "action") in ("published", "released", "created"))
    return True


def release_version(
    provider: Provider, event: str, payload: Any, template: str | None, *, strip_v: bool = True
) -> str | None:
    """The version a delivery maps to; None lets the project's version template decide.

    Raises `Rejected` (422) when the template names a field the payload lacks or the result
    is not a valid version.
    """
    template = template or _default_template(provider, event, payload)
    if template is None:
        return None

    def substitute(match: re.Match[str]) -> str:
        value = field_value(payload, match.group(1))
        if value is None or isinstance(value, (dict, list)):
            raise Rejected(f"the payload has no field {match.group(1)!r}", 422)
        return str(value)

    version = FIELD.sub(substitute, template).removeprefix("refs/tags/")
    if strip_v and len(version) > 1 and version[0] in "vV" and version[1].isdigit():
        version = version[1:]
    if not VERSION.match(version):
        raise Rejected(f"{version!r} is not a valid release version", 422)
    return version
