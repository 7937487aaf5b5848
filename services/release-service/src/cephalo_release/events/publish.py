"""Events this service announces, written to the outbox in the caller's transaction."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.contracts import (
    DEPLOYMENT_REQUESTED,
    RELEASE_CREATED,
    DeploymentRequestedV1,
    ReleaseCreatedV1,
)
from cephalo_common.db.outbox import emit_event
from cephalo_common.messaging.envelope import Envelope
from cephalo_release.db.models import OutboxEvent

SOURCE = "cephalo://release-service"


def release_created(session: AsyncSession, space_id: str, data: ReleaseCreatedV1) -> Envelope:
    return emit_event(
        session,
        OutboxEvent,
        RELEASE_CREATED,
        source=SOURCE,
        space=space_id,
        data=data,
        subject=f"releases/{data.release_id}",
    )


def deployment_requested(
    session: AsyncSession, space_id: str, data: DeploymentRequestedV1
) -> Envelope:
    return emit_event(
        session,
        OutboxEvent,
        DEPLOYMENT_REQUESTED,
        source=SOURCE,
        space=space_id,
        data=data,
        subject=f"deployments/{data.deployment_id}",
    )
