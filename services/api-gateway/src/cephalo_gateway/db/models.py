"""api-gateway tables, in the `gateway` schema. API schemas and events never import these."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
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
    """One state-changing request (or refused credential) and its outcome.

    Rows are only ever inserted: a database trigger refuses UPDATE and DELETE."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "occurred_at"),
        Index(None, "user_id", "occurred_at"),
        Index(None, "category", "occurred_at"),
    )

    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(Text)
    status: Mapped[int] = mapped_column(Integer)
    space_id: Mapped[uuid.UUID | None] = mapped_column()
    actor: Mapped[str] = mapped_column(String(200))
    request_id: Mapped[str] = mapped_column(Text)
    upstream: Mapped[str] = mapped_column(String(50))
    category: Mapped[str] = mapped_column(String(40), server_default="Unknown")
    user_id: Mapped[uuid.UUID | None] = mapped_column()
    ip_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(500))
    detail: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    """What the request body set, sensitive values reduced to "changed"."""


class User(IdMixin, TimestampMixin, Base):
    """A person (password, sessions) or a service account (API keys only)."""

    __tablename__ = "users"

    username: Mapped[str] = mapped_column(String(200))
    username_key: Mapped[str] = mapped_column(String(200), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(Text)
    is_service_account: Mapped[bool] = mapped_column(Boolean, default=False)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Team(IdMixin, TimestampMixin, Base):
    """Users who share scoped roles; `space_id` None means the team spans every space."""

    __tablename__ = "teams"

    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    space_id: Mapped[uuid.UUID | None] = mapped_column()
    is_builtin: Mapped[bool] = mapped_column(Boolean, default=False)


class TeamMember(IdMixin, TimestampMixin, Base):
    __tablename__ = "team_members"
    __table_args__ = (UniqueConstraint("team_id", "user_id"), Index(None, "user_id"))

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))


class RoleAssignment(IdMixin, TimestampMixin, Base):
    """A role for a team, scoped by space, projects, project groups and environments
    (an empty list leaves that dimension unrestricted)."""

    __tablename__ = "role_assignments"
    __table_args__ = (Index(None, "team_id"),)

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(100))
    space_id: Mapped[uuid.UUID | None] = mapped_column()
    project_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    project_group_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)
    environment_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(Uuid), default=list)


class ApiKey(IdMixin, TimestampMixin, Base):
    """Only the SHA-256 of the key is kept; the key itself is shown once."""

    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    display: Mapped[str] = mapped_column(String(20))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Session(IdMixin, TimestampMixin, Base):
    """A browser login; the cookie carries the id and a secret whose hash is kept here."""

    __tablename__ = "sessions"
    __table_args__ = (Index(None, "user_id"),)

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    secret_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ip_address: Mapped[str | None] = mapped_column(String(64))


class Webhook(IdMixin, TimestampMixin, Base):
    """A CI endpoint bound to a service account and one action; its secret is encrypted
    (AES-GCM, the hook id as associated data) because signatures need it back."""

    __tablename__ = "webhooks"

    name: Mapped[str] = mapped_column(String(200))
    space_id: Mapped[uuid.UUID] = mapped_column()
    provider: Mapped[str] = mapped_column(String(20))
    action: Mapped[str] = mapped_column(String(30))
    project: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(200))
    environments: Mapped[list[str]] = mapped_column(ARRAY(String(200)), default=list)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list)
    version_template: Mapped[str | None] = mapped_column(String(500))
    strip_v_prefix: Mapped[bool] = mapped_column(Boolean, default=True)
    service_account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE")
    )
    secret_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class WebhookDelivery(IdMixin, TimestampMixin, Base):
    """Each accepted delivery id, once: a replay is refused for as long as the row lives."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (UniqueConstraint("webhook_id", "delivery_id"),)

    webhook_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    delivery_id: Mapped[str] = mapped_column(String(200))
    event: Mapped[str] = mapped_column(String(100))
    outcome: Mapped[str] = mapped_column(Text, default="")
