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

SCHEMA = "release"


class Base(DeclarativeBase):
    """`eager_defaults`: server-set columns (`updated_at`) come back with the write, so a
    response can render them without a lazy load."""

    metadata = service_metadata(SCHEMA)
    __mapper_args__ = {"eager_defaults": True}


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
    __table_args__ = (
        UniqueConstraint("space_id", "name_key"),
        UniqueConstraint("space_id", "slug"),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    sort_order: Mapped[int] = mapped_column(Integer, default=0)
    use_guided_failure: Mapped[bool] = mapped_column(Boolean, default=False)
    allow_dynamic_infrastructure: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))


class Lifecycle(IdMixin, TimestampMixin, Base):
    """Ordered phases (a JSON document edited as a whole) and retention policies."""

    __tablename__ = "lifecycles"
    __table_args__ = (
        UniqueConstraint("space_id", "name_key"),
        UniqueConstraint("space_id", "slug"),
        Index(
            "ix_lifecycles__one_default_per_space",
            "space_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    release_retention_policy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    target_retention_policy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    phases: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)


class ProjectGroup(IdMixin, TimestampMixin, Base):
    __tablename__ = "project_groups"
    __table_args__ = (
        UniqueConstraint("space_id", "name_key"),
        UniqueConstraint("space_id", "slug"),
        Index(
            "ix_project_groups__one_default_per_space",
            "space_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)


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
    project_group_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("project_groups.id"), index=True)
    lifecycle_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("lifecycles.id"), index=True)
    default_guided_failure_mode: Mapped[str] = mapped_column(
        String(30), default="EnvironmentDefault"
    )
    connectivity_policy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    versioning_strategy: Mapped[dict[str, Any]] = mapped_column(JSONB)
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    version: Mapped[int] = mapped_column(Integer, default=1)


class Channel(IdMixin, TimestampMixin, Base):
    """A release stream of a project: its own lifecycle (or the project's) and version rules."""

    __tablename__ = "channels"
    __table_args__ = (
        UniqueConstraint("project_id", "name_key"),
        UniqueConstraint("project_id", "slug"),
        Index(
            "ix_channels__one_default_per_project",
            "project_id",
            unique=True,
            postgresql_where=text("is_default"),
        ),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    lifecycle_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("lifecycles.id"))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)


class DeploymentProcess(TimestampMixin, Base):
    """A project's current steps; `version` guards concurrent edits."""

    __tablename__ = "deployment_processes"

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    steps: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)


class Release(IdMixin, TimestampMixin, Base):
    """An immutable snapshot of the process, the chosen package versions and the variables."""

    __tablename__ = "releases"
    __table_args__ = (UniqueConstraint("project_id", "version_key"),)

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id"), index=True)
    version: Mapped[str] = mapped_column(String(100))
    version_key: Mapped[str] = mapped_column(
        String(100), Computed("lower(version)", persisted=True)
    )
    release_notes: Mapped[str] = mapped_column(Text, default="")
    process_snapshot: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    process_version: Mapped[int] = mapped_column(Integer)
    selected_packages: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    variables_snapshot: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )


class Deployment(IdMixin, TimestampMixin, Base):
    __tablename__ = "deployments"
    __table_args__ = (
        Index(
            "ix_deployments__project_environment_created",
            "project_id",
            "environment_id",
            "created_at",
        ),
        Index(
            "ix_deployments__scheduled",
            "queue_time",
            postgresql_where=text("state = 'Scheduled'"),
        ),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id"), index=True)
    environment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("environments.id"), index=True)
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id"))
    state: Mapped[str] = mapped_column(String(30), default="Queued")
    trigger: Mapped[str] = mapped_column(String(30), default="Manual", server_default="Manual")
    deployed_by: Mapped[str | None] = mapped_column(String(200))
    comments: Mapped[str] = mapped_column(Text, default="", server_default="")
    specific_machine_ids: Mapped[list[str]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    excluded_machine_ids: Mapped[list[str]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    skip_actions: Mapped[list[str]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    guided_failure_override: Mapped[bool | None] = mapped_column(Boolean)
    use_guided_failure: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("false")
    )
    queue_time: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    queue_time_expiry: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    redeploy_of_id: Mapped[uuid.UUID | None] = mapped_column()
    task_id: Mapped[uuid.UUID | None] = mapped_column()
    error: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AutomaticDeployment(TimestampMixin, Base):
    """That the release was automatically deployed to the environment: at most once, ever."""

    __tablename__ = "automatic_deployments"

    release_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("releases.id"), primary_key=True)
    environment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("environments.id"), primary_key=True
    )
    deployment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("deployments.id"))


class VariableSet(IdMixin, TimestampMixin, Base):
    """A project's variables (one per project) or a library variable set of the space.

    `variables` is the whole list, edited as one document under `version`; sensitive values
    are not in it but in `sensitive_values`, encrypted.
    """

    __tablename__ = "variable_sets"
    __table_args__ = (
        UniqueConstraint("project_id"),
        Index(
            "ix_variable_sets__library_name",
            "space_id",
            "name_key",
            unique=True,
            postgresql_where=text("kind = 'library'"),
        ),
        Index(
            "ix_variable_sets__library_slug",
            "space_id",
            "slug",
            unique=True,
            postgresql_where=text("kind = 'library'"),
        ),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    project_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    slug: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    variables: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    included_set_ids: Mapped[list[str]] = mapped_column(JSONB, default=list)
    version: Mapped[int] = mapped_column(Integer, default=1)


class SensitiveValue(TimestampMixin, Base):
    """One sensitive value, AES-GCM encrypted; the associated data is `owner_id:variable_id`
    (a variable set, a release snapshot or a deployment's prompted values)."""

    __tablename__ = "sensitive_values"

    owner_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    variable_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(64), index=True)
    nonce: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)


class ProjectTrigger(IdMixin, TimestampMixin, Base):
    """Creates releases when a package is pushed, or deploys on a cron schedule (§10.1)."""

    __tablename__ = "project_triggers"
    __table_args__ = (
        UniqueConstraint("project_id", "name_key"),
        Index(
            "ix_project_triggers__due",
            "next_run_at",
            postgresql_where=text("kind = 'Schedule' AND NOT is_disabled"),
        ),
    )

    space_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("spaces.id"), index=True)
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), Computed("lower(name)", persisted=True))
    description: Mapped[str] = mapped_column(Text, default="")
    is_disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    kind: Mapped[str] = mapped_column(String(30))
    channel_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("channels.id"))
    cron: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(100), default="UTC")
    action: Mapped[str | None] = mapped_column(String(40))
    source_environment_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("environments.id"))
    destination_environment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("environments.id")
    )
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_result: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)


class TriggeredRelease(TimestampMixin, Base):
    """A set of package versions a trigger already released in a channel: at most once."""

    __tablename__ = "triggered_releases"

    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id"), primary_key=True)
    version_set: Mapped[str] = mapped_column(Text, primary_key=True)
    release_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("releases.id"))
