"""release-service tables, in the `release` schema. API schemas and events never import these."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Computed,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cephalo_common.db.base import IdMixin, TimestampMixin, service_metadata
from cephalo_common.db.inbox import InboxMixin
from cephalo_common.db.outbox import OutboxMixin

SCHEMA = "release"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class OutboxEvent(OutboxMixin, Base):
    __tablename__ = "outbox"


class InboxMessage(InboxMixin, Base):
    __tablename__ = "inbox"


class Space(IdMixin, TimestampMixin, Base):
    __tablename__ = "spaces"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class Environment(IdMixin, TimestampMixin, Base):
    __tablename__ = "environments"
    __table_args__ = (UniqueConstraint("space_id", "name_key"),)

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    description: Mapped[str] = mapped_column(Text, default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    use_guided_failure: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_dynamic_infrastructure: Mapped[bool] = mapped_column(Boolean, default=False)


class Project(IdMixin, TimestampMixin, Base):
    __tablename__ = "projects"
    __table_args__ = (
        UniqueConstraint("space_id", "name_key"),
        UniqueConstraint("space_id", "slug"),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")


class DeploymentProcess(TimestampMixin, Base):
    """A project's current steps; `version` guards concurrent edits."""

    __tablename__ = "deployment_processes"

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)


class Release(IdMixin, TimestampMixin, Base):
    """An immutable snapshot of the process (and later variables and packages)."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("project_id", "version_key"),)

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    version: Mapped[str] = mapped_column(String(100))
    version_key: Mapped[str] = mapped_column(
        String(100), Computed("lower(version)", persisted=True)
    )
    release_notes: Mapped[str] = mapped_column(Text, default="")
    process_snapshot: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    process_version: Mapped[int] = mapped_column(Integer)


class Deployment(IdMixin, TimestampMixin, Base):
    __tablename__ = "deployments"

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id"), index=True)
    environment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("environments.id"), index=True)
    state: Mapped[str] = mapped_column(String(30), default="Queued")
    task_id: Mapped[uuid.UUID | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
