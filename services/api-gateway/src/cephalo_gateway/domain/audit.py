"""The audit log: who changed what, through which service, with what outcome."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from cephalo_gateway.db.models import AuditEvent
from cephalo_gateway.db.repositories import Repositories
from cephalo_gateway.events import publish
from cephalo_gateway.events.contracts import AuditRecordedV1

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ANONYMOUS = "anonymous"
"""The actor until identity lands: every request is anonymous."""


def is_state_changing(method: str) -> bool:
    """Reads are not audited (as in Octopus); every mutating request is."""
    return method.upper() in STATE_CHANGING_METHODS


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
        ),
    )
    return event


async def list_events(repos: Repositories, *, limit: int, offset: int) -> Sequence[AuditEvent]:
    """Newest first: the order people read an audit log in."""
    return await repos.audit_events.list_newest_first(limit=limit, offset=offset)
