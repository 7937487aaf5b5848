"""Events this service announces, written to the outbox in the caller's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.contracts import AUDIT_RECORDED
from cephalo_common.db.outbox import emit_event
from cephalo_common.messaging.envelope import Envelope
from cephalo_gateway.db.models import OutboxEvent
from cephalo_gateway.events.contracts import AuditRecordedV1

SOURCE = "cephalo://api-gateway"
SYSTEM_SPACE = "system"
"""The subject token for events about no space (creating a space, the server certificate);
it can never clash with a space, whose token is its UUID."""


def audit_recorded(session: AsyncSession, data: AuditRecordedV1) -> Envelope:
    return emit_event(
        session,
        OutboxEvent,
        AUDIT_RECORDED,
        source=SOURCE,
        space=data.space_id or SYSTEM_SPACE,
        data=data,
        subject=f"audit-events/{data.audit_event_id}",
    )
