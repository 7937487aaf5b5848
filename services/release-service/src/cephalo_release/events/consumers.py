"""What release-service consumes from the orchestrator (idempotent through the inbox)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.contracts import (
    DEPLOYMENT_FINISHED,
    TASK_STATE_CHANGED,
    DeploymentFinishedV1,
    EventKind,
    TaskStateChangedV1,
)
from cephalo_common.db.inbox import SessionHandler, idempotent_handler
from cephalo_common.http.app import Runtime
from cephalo_common.messaging.broker import ConsumerSpec
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.messaging.streams import EVT_DEPLOY
from cephalo_release.db.models import InboxMessage
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.deployments import record_finished, record_task_started

DEPLOYMENT_FINISHED_CONSUMER = "release-service--deployment-finished"
TASK_STATE_CHANGED_CONSUMER = "release-service--task-state-changed"


async def on_deployment_finished(session: AsyncSession, envelope: Envelope) -> None:
    await record_finished(Repositories(session), envelope.payload(DeploymentFinishedV1))


async def on_task_state_changed(session: AsyncSession, envelope: Envelope) -> None:
    change = envelope.payload(TaskStateChangedV1)
    if change.state == "Executing" and change.deployment_id:
        await record_task_started(Repositories(session), change.task_id, change.deployment_id)


def _consumer(runtime: Runtime, name: str, kind: EventKind, handle: SessionHandler) -> ConsumerSpec:
    messaging = runtime.settings.messaging
    return ConsumerSpec(
        name=name,
        stream=EVT_DEPLOY.name,
        filter_subject=kind.filter_subject,
        handler=idempotent_handler(runtime.sessionmaker, InboxMessage, name, handle),
        max_deliver=messaging.consumer_max_deliver,
        backoff_seconds=tuple(messaging.consumer_backoff_seconds),
        ack_wait_seconds=messaging.consumer_ack_wait_seconds,
    )


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    return [
        _consumer(
            runtime, DEPLOYMENT_FINISHED_CONSUMER, DEPLOYMENT_FINISHED, on_deployment_finished
        ),
        _consumer(runtime, TASK_STATE_CHANGED_CONSUMER, TASK_STATE_CHANGED, on_task_state_changed),
    ]
