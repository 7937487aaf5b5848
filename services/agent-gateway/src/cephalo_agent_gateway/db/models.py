"""agent-gateway tables, in the `agent_gateway` schema. API schemas and events never import these."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
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
    """A deployment target or a worker. Its certificate thumbprint is its identity on every
    connection; `kind` says which (targets live in environments, workers in worker pools)."""

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
    kind: Mapped[str] = mapped_column(String(20), default="target", server_default="target")
    uri: Mapped[str | None] = mapped_column(String(500))
    worker_pool_ids: Mapped[list[str]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    machine_policy_id: Mapped[uuid.UUID | None] = mapped_column()
    health_message: Mapped[str | None] = mapped_column(Text)
    health_checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the next health check is due; a replica claims a check by moving it forward.
    health_next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class PendingRegistration(IdMixin, TimestampMixin, Base):
    """An agent the gateway refused (unknown certificate) that asked to be approved."""

    __tablename__ = "pending_registrations"

    space_id: Mapped[uuid.UUID] = mapped_column(index=True)
    thumbprint: Mapped[str] = mapped_column(String(64), unique=True)
    certificate_pem: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(20), default="target")
    mode: Mapped[str] = mapped_column(String(20), default="polling")
    uri: Mapped[str | None] = mapped_column(String(500))
    remote_address: Mapped[str | None] = mapped_column(String(100))
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WorkerPool(IdMixin, TimestampMixin, Base):
    __tablename__ = "worker_pools"
    __table_args__ = (
        UniqueConstraint("space_id", "name_key"),
        Index(
            "ix_worker_pools__one_default",
            "space_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class MachinePolicy(IdMixin, TimestampMixin, Base):
    """How often and how machines are health-checked (after Octopus's machine policies)."""

    __tablename__ = "machine_policies"
    __table_args__ = (
        UniqueConstraint("space_id", "name_key"),
        Index(
            "ix_machine_policies__one_default",
            "space_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    health_check_interval_seconds: Mapped[int] = mapped_column(Integer, default=3600)
    health_check_schedule: Mapped[str] = mapped_column(
        String(20), default="Interval", server_default="Interval"
    )
    health_check_cron: Mapped[str | None] = mapped_column(String(200))
    health_check_cron_timezone: Mapped[str] = mapped_column(
        String(64), default="UTC", server_default="UTC"
    )
    health_check_type: Mapped[str] = mapped_column(String(30), default="OnlyConnectivity")
    health_check_script: Mapped[str | None] = mapped_column(Text)
    health_check_syntax: Mapped[str] = mapped_column(String(20), default="bash")
    health_check_timeout_seconds: Mapped[int] = mapped_column(Integer, default=60)


class HealthCheck(IdMixin, TimestampMixin, Base):
    """One health check result: the history behind a machine's `health_status`."""

    __tablename__ = "health_checks"
    __table_args__ = (Index("ix_health_checks__machine_id_created_at", "machine_id", "created_at"),)

    space_id: Mapped[uuid.UUID] = mapped_column()
    machine_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(30))
    previous_status: Mapped[str] = mapped_column(String(30))
    message: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer)


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
    # Success | Failed | Canceled | TimedOut | Interrupted | Error, once Complete.
    outcome: Mapped[str | None] = mapped_column(String(20))
    cancel_requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The replica driving the run, and until when its claim holds (renewed while alive).
    driver: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SshEndpoint(TimestampMixin, Base):
    """How the gateway reaches an SSH target: address, sealed account, pinned host key.

    The account (password or private key) is sealed with the gateway's account key, bound
    to the machine id; the API never returns it.
    """

    __tablename__ = "ssh_endpoints"

    machine_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey(f"{SCHEMA}.machines.id", ondelete="CASCADE"), primary_key=True
    )
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(200))
    auth: Mapped[str] = mapped_column(String(20))  # password | private_key
    sealed_account: Mapped[bytes] = mapped_column(LargeBinary)
    host_key: Mapped[str] = mapped_column(Text)
    host_key_fingerprint: Mapped[str] = mapped_column(String(100))
    host_key_pinned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class SshHostKeyEvent(IdMixin, TimestampMixin, Base):
    """The audit trail of an SSH target's host key: pinned, refused (changed), re-pinned."""

    __tablename__ = "ssh_host_key_events"
    __table_args__ = (Index("ix_ssh_host_key_events__machine_created", "machine_id", "created_at"),)

    space_id: Mapped[uuid.UUID] = mapped_column()
    machine_id: Mapped[uuid.UUID] = mapped_column()
    action: Mapped[str] = mapped_column(String(20))  # Pinned | Refused | Repinned
    pinned_fingerprint: Mapped[str | None] = mapped_column(String(100))
    presented_fingerprint: Mapped[str | None] = mapped_column(String(100))
    presented_key: Mapped[str | None] = mapped_column(Text)
