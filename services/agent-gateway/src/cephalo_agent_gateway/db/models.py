"""agent-gateway tables, in the `agent_gateway` schema. API schemas and events never import these."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cephalo_common.db.base import IdMixin, TimestampMixin, service_metadata
from cephalo_common.db.inbox import InboxMixin
from cephalo_common.db.outbox import OutboxMixin

SCHEMA = "agent_gateway"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class OutboxEvent(OutboxMixin, Base):
    __tablename__ = "outbox"


class InboxMessage(InboxMixin, Base):
    __tablename__ = "inbox"


class Machine(IdMixin, TimestampMixin, Base):
    """A deployment target. Its certificate thumbprint is its identity on every connection."""

    __tablename__ = "machines"
    __table_args__ = (UniqueConstraint("space_id", "name_key"),)

    space_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    certificate_pem: Mapped[str] = mapped_column(Text)
    mode: Mapped[str] = mapped_column(String(20), default="polling")
    environment_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    roles: Mapped[list[str]] = mapped_column(JSONB, default=list)
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    health_status: Mapped[str] = mapped_column(String(30), default="Unknown")
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ScriptRun(TimestampMixin, Base):
    """One dispatched script on one machine, keyed by the dispatch's ticket.

    `last_log_sequence` is the cursor into the agent's log: lines up to it have been written
    to the outbox, so a resumed run asks for the lines after it and none is sent twice.
    """

    __tablename__ = "script_runs"
    __table_args__ = (
        Index(
            "ix_script_runs__unfinished",
            "created_at",
            postgresql_where=text("state <> 'Complete'"),
        ),
    )

    ticket: Mapped[str] = mapped_column(String(200), primary_key=True)
    space_id: Mapped[uuid.UUID] = mapped_column()
    task_id: Mapped[str] = mapped_column(String(100))
    step_run_id: Mapped[str] = mapped_column(String(100))
    machine_id: Mapped[uuid.UUID] = mapped_column(index=True)
    dispatch: Mapped[dict[str, Any]] = mapped_column(JSONB)
    state: Mapped[str] = mapped_column(String(20), default="Pending")
    last_log_sequence: Mapped[int] = mapped_column(Integer, default=0)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    causation_id: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
