"""All SQL of api-gateway. Repositories flush; the edge commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.db.repository import RepositoryBase
from cephalo_gateway.db.models import AuditEvent


class AuditEventRepository(RepositoryBase[AuditEvent]):
    model = AuditEvent
    noun = "audit event"

    async def list_newest_first(self, *, limit: int, offset: int) -> Sequence[AuditEvent]:
        return await self.list(
            select(AuditEvent)
            .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
            .limit(limit)
            .offset(offset)
        )


class Repositories:
    """Every repository of this service over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.audit_events = AuditEventRepository(session)
