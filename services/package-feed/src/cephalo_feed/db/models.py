"""package-feed tables, in the `feed` schema. API schemas and events never import these."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Computed,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cephalo_common.db.base import IdMixin, TimestampMixin, service_metadata
from cephalo_common.db.inbox import InboxMixin
from cephalo_common.db.outbox import OutboxMixin
from cephalo_common.ids import utc_now

SCHEMA = "feed"


class Base(DeclarativeBase):
    metadata = service_metadata(SCHEMA)


class OutboxEvent(OutboxMixin, Base):
    __tablename__ = "outbox"


class InboxMessage(InboxMixin, Base):
    __tablename__ = "inbox"


class Blob(IdMixin, TimestampMixin, Base):
    """Stored bytes, addressed by their SHA-256: identical packages share one blob.

    A push touches `updated_at` before it stores the bytes, so the garbage collector (which
    removes blobs no package references) leaves a blob alone while a push may still need it.
    """

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    storage_key: Mapped[str] = mapped_column(String(500))


class Package(IdMixin, TimestampMixin, Base):
    """One version of one package in one space; its bytes are the blob with its `sha256`.

    Package ids compare case-insensitively (`package_id_key`) and versions semantically
    (`version_key`, e.g. `1.0` and `1.0.0.0` are both `1.0.0`), as in NuGet and Octopus;
    `version` keeps the spelling that was pushed.
    """

    __tablename__ = "packages"
    __table_args__ = (
        UniqueConstraint("space_id", "package_id_key", "version_key"),
        Index(None, "space_id", "published_at"),
    )

    space_id: Mapped[uuid.UUID] = mapped_column()
    package_id: Mapped[str] = mapped_column(String(100))
    package_id_key: Mapped[str] = mapped_column(
        String(100), Computed("lower(package_id)", persisted=True)
    )
    version: Mapped[str] = mapped_column(String(100))
    version_key: Mapped[str] = mapped_column(String(100))
    extension: Mapped[str] = mapped_column(String(20), server_default=text("''"))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(
        String(64), ForeignKey("blobs.sha256", ondelete="RESTRICT"), index=True
    )
    storage_key: Mapped[str] = mapped_column(String(500))
    release_notes: Mapped[str] = mapped_column(Text, server_default=text("''"))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
