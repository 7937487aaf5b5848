"""package-feed tables, in the `feed` schema. API schemas and events never import these."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Computed, DateTime, Index, String, UniqueConstraint
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


class Package(IdMixin, TimestampMixin, Base):
    """One version of one package in one space; the bytes live at `storage_key`.

    Package ids compare case-insensitively (`package_id_key`), as NuGet and Octopus do;
    the version string is kept exactly as pushed.
    """

    __tablename__ = "packages"
    __table_args__ = (
        UniqueConstraint("space_id", "package_id_key", "version"),
        Index(None, "space_id", "published_at"),
    )

    space_id: Mapped[uuid.UUID] = mapped_column()
    package_id: Mapped[str] = mapped_column(String(100))
    package_id_key: Mapped[str] = mapped_column(
        String(100), Computed("lower(package_id)", persisted=True)
    )
    version: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(500))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)
