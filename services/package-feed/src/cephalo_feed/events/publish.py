"""Events this service announces, written to the outbox in the caller's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.contracts import (
    PACKAGE_DELETED,
    PACKAGE_PUSHED,
    PackageDeletedV1,
    PackagePushedV1,
)
from cephalo_common.db.outbox import emit_event
from cephalo_common.messaging.envelope import Envelope
from cephalo_feed.db.models import OutboxEvent

SOURCE = "cephalo://package-feed"


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
