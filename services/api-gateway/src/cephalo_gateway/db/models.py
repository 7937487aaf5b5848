"""api-gateway tables, in the `gateway` schema. API schemas and events never import these."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cephalo_common.db.base import IdMixin, TimestampMixin, service_metadata
from cephalo_common.db.inbox import InboxMixin
from cephalo_common.db.outbox import OutboxMixin
from cephalo_common.ids import utc_now

SCHEMA = "gateway"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class OutboxEvent(OutboxMixin, Base):
    __tablename__ = "outbox"


class InboxMessage(InboxMixin, Base):
    __tablename__ = "inbox"


class AuditEvent(IdMixin, TimestampMixin, Base):
    """One state-changing request and its outcome. Rows are only ever inserted."""

    __tablename__ = "audit_events"
    __table_args__ = (Index(None, "occurred_at"),)

    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    space_id: Mapped[uuid.UUID | None] = mapped_column()
    actor: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str] = mapped_column(Text)
    upstream: Mapped[str] = mapped_column(String(50))
