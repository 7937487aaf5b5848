"""The audit log: who changed what, through which service, with what outcome."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

from cephalo_gateway.db.models import AuditEvent
from cephalo_gateway.db.repositories import AuditFilter, Repositories
from cephalo_gateway.events import publish
from cephalo_gateway.events.contracts import AuditRecordedV1

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANONYMOUS = "anonymous"
"""The actor of a request that presented no valid credentials."""


class Category:
    """Octopus-like event categories; the list is served at /api/v1/audit-events/categories."""

    CREATED = "Created"
    MODIFIED = "Modified"
    DELETED = "Deleted"
    AUTHENTICATION_FAILED = "AuthenticationFailed"
    ACCESS_DENIED = "AccessDenied"
    LOGIN_SUCCEEDED = "LoginSucceeded"
    LOGIN_FAILED = "LoginFailed"
    LOGGED_OUT = "LoggedOut"
    WEBHOOK_DELIVERED = "WebhookDelivered"
    WEBHOOK_REJECTED = "WebhookRejected"


ALL_CATEGORIES = tuple(value for name, value in vars(Category).items() if not name.startswith("_"))


@overload
def storable(text: str) -> str: ...
@overload
def storable(text: None) -> None: ...
def storable(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: a request for `/spaces/%00` must still be recorded,
    so NUL becomes U+FFFD (the replacement character) in what the audit row keeps."""
    return None if text is None else text.replace("\x00", "\ufffd")


def is_state_changing(method: str) -> bool:
    """Reads are not audited (as in Octopus); every mutating request is."""
    return method.upper() in STATE_CHANGING_METHODS


def should_record(method: str, status: int) -> bool:
    """Every mutating request once, and every refused credential or permission."""
    return is_state_changing(method) or status in (401, 403)


def category_of(method: str, status: int) -> str:
    if status == 401:
        return Category.AUTHENTICATION_FAILED
    if status == 403:
        return Category.ACCESS_DENIED
    return {
        "POST": Category.CREATED,
        "PUT": Category.MODIFIED,
        "PATCH": Category.MODIFIED,
        "DELETE": Category.DELETED,
    }.get(method.upper(), Category.MODIFIED)


@dataclass(frozen=True)
class AuditEntry:
    """A forwarded request as the audit log records it (the path without its query)."""

    method: str
    path: str
    status: int
    space_id: uuid.UUID | None
    actor: str
    request_id: str
    upstream: str
    category: str = ""
    user_id: uuid.UUID | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    detail: str | None = None
    changes: dict[str, Any] | None = None
    """The redacted summary of the request body (`audit_changes`)."""


async def record(repos: Repositories, entry: AuditEntry) -> AuditEvent:
    """Insert the row and its `audit.recorded` event in the caller's transaction."""
    event = await repos.audit_events.add(
        AuditEvent(
            method=entry.method.upper(),
            path=entry.path,
            status=entry.status,
            space_id=entry.space_id,
            actor=entry.actor,
            request_id=entry.request_id,
            upstream=entry.upstream,
            category=entry.category or category_of(entry.method, entry.status),
            user_id=entry.user_id,
            ip_address=entry.ip_address,
            user_agent=(entry.user_agent or "")[:500] or None,
            detail=entry.detail,
            changes=entry.changes,
        )
    )
    publish.audit_recorded(
        repos.session,
        AuditRecordedV1(
            audit_event_id=str(event.id),
            occurred_at=event.occurred_at,
            method=event.method,
            path=event.path,
            status=event.status,
            space_id=str(event.space_id) if event.space_id else None,
            actor=event.actor,
            request_id=event.request_id,
            upstream=event.upstream,
            category=event.category,
            user_id=str(event.user_id) if event.user_id else None,
            ip_address=event.ip_address,
            changes=event.changes,
        ),
    )
    return event


async def list_events(
    repos: Repositories, *, limit: int, offset: int, filter: AuditFilter | None = None
) -> Sequence[AuditEvent]:
    """Newest first: the order people read an audit log in."""
    return await repos.audit_events.list_newest_first(limit=limit, offset=offset, filter=filter)
