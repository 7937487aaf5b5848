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
_TASK_STATES = (
    "'Queued', 'Executing', 'Paused', 'Cancelling', 'Success', 'Failed', 'Canceled', 'TimedOut'"
)
_RUN_STATES = "'Pending', 'Running', 'Success', 'Failed', 'Canceled', 'TimedOut'"
_INTERRUPTION_KINDS = "'GuidedFailure', 'ManualIntervention'"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class OutboxEvent(OutboxMixin, Base):
    __tablename__ = "outbox"


class InboxMessage(InboxMixin, Base):
    __tablename__ = "inbox"


class ServerTask(IdMixin, TimestampMixin, Base):
    """One deployment's execution. `step_due_at` set means the current step still needs starting.

    A running task is held by `server_node` until `lease_expires_at`; the holder renews the
    lease on its heartbeat, and any instance adopts a task whose lease ran out (crash safety).
    """

    __tablename__ = "server_tasks"
    __table_args__ = (
        CheckConstraint(f"state IN ({_TASK_STATES})", name="state"),
        Index(
            "ix_server_tasks__one_running_per_lane",
            "project_id",
            "environment_id",
            unique=True,
            postgresql_where=text("state IN ('Executing', 'Paused', 'Cancelling')"),
        ),
        Index("ix_server_tasks__queued", "queued_at", postgresql_where=text("state = 'Queued'")),
        Index(
            "ix_server_tasks__step_due",
            "step_due_at",
            postgresql_where=text("step_due_at IS NOT NULL"),
        ),
        Index("ix_server_tasks__space_id_queued_at", "space_id", "queued_at"),
        Index(
            "ix_server_tasks__lease_expires_at",
            "lease_expires_at",
            postgresql_where=text("state IN ('Executing', 'Paused', 'Cancelling')"),
        ),
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
    variable_values: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    options: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    channel_id: Mapped[str | None] = mapped_column(String(64))
    channel_name: Mapped[str | None] = mapped_column(String(200))
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    deployed_by: Mapped[str | None] = mapped_column(String(200))
    plan: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    group_index: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    group_steps: Mapped[dict[str, list[int]] | None] = mapped_column(JSONB)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    state: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)
    current_step: Mapped[int] = mapped_column(Integer, default=0)
    step_due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    step_start_failures: Mapped[int] = mapped_column(Integer, default=0)
    step_start_failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    server_node: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
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
        Index(
            "ix_step_runs__reported_at",
            "reported_at",
            postgresql_where=text("reported IS NOT NULL"),
        ),
    )

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("server_tasks.id"), index=True)
    step_index: Mapped[int] = mapped_column(Integer)
    step_name: Mapped[str] = mapped_column(String(200))
    machine_id: Mapped[uuid.UUID | None] = mapped_column()
    machine_name: Mapped[str] = mapped_column(String(200))
    ticket: Mapped[str] = mapped_column(String(64), unique=True)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    state: Mapped[str] = mapped_column(String(20))
    exit_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    output_variables: Mapped[dict[str, str]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    sensitive_outputs: Mapped[list[str]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    log_sequence: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))
    reported: Mapped[dict[str, Any] | None] = mapped_column(JSONB(none_as_null=True))
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome_override: Mapped[str | None] = mapped_column(String(20))


class Interruption(IdMixin, TimestampMixin, Base):
    """A question the task waits on: guided failure or a manual intervention step."""

    __tablename__ = "interruptions"
    __table_args__ = (
        CheckConstraint(f"kind IN ({_INTERRUPTION_KINDS})", name="kind"),
        Index("ix_interruptions__space_id_created_at", "space_id", "created_at"),
    )

    space_id: Mapped[uuid.UUID] = mapped_column()
    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("server_tasks.id"), index=True)
    step_run_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("step_runs.id"))
    kind: Mapped[str] = mapped_column(String(30))
    title: Mapped[str] = mapped_column(Text)
    instructions: Mapped[str | None] = mapped_column(Text)
    responsible_team_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    choices: Mapped[list[str]] = mapped_column(JSONB)
    is_pending: Mapped[bool] = mapped_column(default=True)
    responsible_user: Mapped[str | None] = mapped_column(String(200))
    result: Mapped[str | None] = mapped_column(String(30))
    notes: Mapped[str | None] = mapped_column(Text)
    submitted_by: Mapped[str | None] = mapped_column(String(200))
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


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


class TaskArtifact(IdMixin, Base):
    """A file a step published; its bytes are in the task artifact object store under
    `object_name` (the row is written only once they are there)."""

    __tablename__ = "task_artifacts"
    __table_args__ = (
        UniqueConstraint("object_name"),
        Index("ix_task_artifacts__task_id_created_at", "task_id", "created_at"),
    )

    task_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("server_tasks.id"))
    step_run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("step_runs.id"))
    step_name: Mapped[str] = mapped_column(String(200))
    machine_name: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(500))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    object_name: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), nullable=False
    )
