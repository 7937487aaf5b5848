"""What release-service consumes: the orchestrator's `deployment.finished` (idempotent)."""

from __future__ import annotations

from collections.abc import Sequence

from cephalo_common.contracts import DEPLOYMENT_FINISHED, DeploymentFinishedV1
from cephalo_common.db.inbox import idempotent_handler
from cephalo_common.http.app import Runtime
from cephalo_common.messaging.broker import ConsumerSpec
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.messaging.streams import EVT_DEPLOY
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_release.db.models import InboxMessage
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.deployments import record_finished

DEPLOYMENT_FINISHED_CONSUMER = "release-service--deployment-finished"


async def on_deployment_finished(session: AsyncSession, envelope: Envelope) -> None:
    await record_finished(Repositories(session), envelope.payload(DeploymentFinishedV1))


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    messaging = runtime.settings.messaging
    return [
        ConsumerSpec(
            name=DEPLOYMENT_FINISHED_CONSUMER,
            stream=EVT_DEPLOY.name,
            filter_subject=DEPLOYMENT_FINISHED.filter_subject,
            handler=idempotent_handler(
                runtime.sessionmaker,
                InboxMessage,
                DEPLOYMENT_FINISHED_CONSUMER,
                on_deployment_finished,
            ),
            max_deliver=messaging.consumer_max_deliver,
            backoff_seconds=tuple(messaging.consumer_backoff_seconds),
            ack_wait_seconds=messaging.consumer_ack_wait_seconds,
        )
    ]
