"""Identifiers and clocks, so every service mints ids and timestamps the same way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import uuid6


def uuid7() -> uuid.UUID:
    """A time-ordered UUIDv7: index-friendly primary keys and NATS message ids."""
    return uuid.UUID(bytes=uuid6.uuid7().bytes)


def utc_now() -> datetime:
    return datetime.now(UTC)
