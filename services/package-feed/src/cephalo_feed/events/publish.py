"""Events this service announces, written to the outbox in the caller's transaction.

`PackagePushedV1` and `PackageDeletedV1` (and the `PACKAGE_DELETED` kind) live here until
they move to `cephalo_common.contracts`, beside `PACKAGE_PUSHED`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.contracts import PACKAGE_PUSHED, Contract, EventKind
from cephalo_common.db.outbox import emit_event
from cephalo_common.messaging.envelope import Envelope
from cephalo_feed.db.models import OutboxEvent

SOURCE = "cephalo://package-feed"
PACKAGE_DELETED = EventKind("feed", "package", "deleted")


class PackagePushedV1(Contract):
    """A package version was stored (new, or replacing the bytes of an existing version)."""

    package_version_id: str
    package_id: str
    version: str
    extension: str
    size_bytes: int
    sha256: str
    published_at: datetime
    replaced: bool = False


class PackageDeletedV1(Contract):
    """A package version was deleted, by a person (`deleted`) or by retention."""

    package_version_id: str
    package_id: str
    version: str
    sha256: str
    reason: Literal["deleted", "retention"]
    forced: bool = False


def package_pushed(session: AsyncSession, space_id: str, data: PackagePushedV1) -> Envelope:
    return emit_event(
        session,
        OutboxEvent,
        PACKAGE_PUSHED,
        source=SOURCE,
        space=space_id,
        data=data,
        subject=f"packages/{data.package_id}/{data.version}",
    )


def package_deleted(session: AsyncSession, space_id: str, data: PackageDeletedV1) -> Envelope:
    return emit_event(
        session,
        OutboxEvent,
        PACKAGE_DELETED,
        source=SOURCE,
        space=space_id,
        data=data,
        subject=f"packages/{data.package_id}/{data.version}",
    )
