"""deploy-orchestrator tables, in the `orchestrator` schema. API schemas and events never import these."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cephalo_common.db.base import IdMixin, TimestampMixin, service_metadata
from cephalo_common.db.inbox import InboxMixin
from cephalo_common.db.outbox import OutboxMixin

SCHEMA = "orchestrator"
_TASK_STATES = "'Queued', 'Executing', 'Cancelling', 'Success', 'Failed', 'Canceled', 'TimedOut'"
_RUN_STATES = "'Pending', 'Running', 'Success', 'Failed'"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class OutboxEvent(OutboxMixin, Base):
    __tablename__ = "outbox"


class InboxMessage(InboxMixin, Base):
    __tablename__ = "inbox"


class ServerTask(IdMixin, TimestampMixin, Base):
    """One deployment's execution. `step_due_at` set means the current step still needs starting."""

    __tablename__ = "server_tasks"
    __table_args__ = (
        CheckConstraint(f"state IN ({_TASK_STATES})", name="state"),
        Index(
            "ix_server_tasks__one_running_per_lane",
            "project_id",
            "environment_id",
            unique=True,
            postgresql_where=text("state IN ('Executing', 'Cancelling')"),
        ),
        Index("ix_server_tasks__queued", "queued_at", postgresql_where=text("state = 'Queued'")),
        Index(
            "ix_server_tasks__step_due",
            "step_due_at",
            postgresql_where=text("step_due_at IS NOT NULL"),
        ),
        Index("ix_server_tasks__space_id_queued_at", "space_id", "queued_at"),
    )

    space_id: Mapped[uuid.UUID] = mapped_column()
    deployment_id: Mapped[uuid.UUID] = mapped_column(unique=True)
    release_id: Mapped[uuid.UUID] = mapped_column()
    release_version: Mapped[str] = mapped_column(String(100))
    project_id: Mapped[uuid.UUID] = mapped_column()
    project_name: Mapped[str] = mapped_column(String(200))
    environment_id: Mapped[uuid.UUID] = mapped_column()
    environment_name: Mapped[str] = mapped_column(String(200))
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    variables: Mapped[dict[str, str]] = mapped_column(JSONB, default=dict)
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    step_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    step_start_failures: Mapped[int] = mapped_column(Integer, default=0)
    step_start_failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    server_node: Mapped[str | None] = mapped_column(String(200))
    correlation_id: Mapped[str | None] = mapped_column(String(64))
    queued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StepRun(IdMixin, TimestampMixin, Base):
    """One step on one machine, keyed by (task, step, machine, attempt); `ticket` goes to the agent."""

    __tablename__ = "step_runs"
    __table_args__ = (
        CheckConstraint(f"state IN ({_RUN_STATES})", name="state"),
        UniqueConstraint("task_id", "step_index", "machine_id", "attempt"),
    )

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("server_tasks.id"), index=True)
    step_index: Mapped[int] = mapped_column(Integer)
    step_name: Mapped[str] = mapped_column(String(200))
    machine_id: Mapped[uuid.UUID] = mapped_column()
    machine_name: Mapped[str] = mapped_column(String(200))
    ticket: Mapped[str] = mapped_column(String(64), unique=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(20))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class TaskLogLine(Base):
    """An append-only log line. The id is a bigint identity, not a UUID: it is the readers'
    cursor (`?after=`), and appends take the task's row lock so ids commit in order per task."""

    __tablename__ = "task_log_lines"
    __table_args__ = (
        UniqueConstraint("step_run_id", "sequence"),
        Index("ix_task_log_lines__task_id_id", "task_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("server_tasks.id"))
    step_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("step_runs.id"))
    sequence: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    machine_name: Mapped[str | None] = mapped_column(String(200))
    step_name: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
