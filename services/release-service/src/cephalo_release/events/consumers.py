"""What release-service consumes from the orchestrator and package-feed (idempotent through
the inbox)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.contracts import (
    DEPLOYMENT_FINISHED,
    PACKAGE_PUSHED,
    TASK_STATE_CHANGED,
    DeploymentFinishedV1,
    EventKind,
    PackagePushedV1,
    TaskStateChangedV1,
)
from cephalo_common.db.inbox import SessionHandler, idempotent_handler
from cephalo_common.http.app import Runtime
from cephalo_common.ids import utc_now
from cephalo_common.messaging.broker import ConsumerSpec
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.messaging.streams import EVT_DEPLOY, EVT_FEED, StreamSpec
from cephalo_release.db.models import InboxMessage
from cephalo_release.db.repositories import Repositories
from cephalo_release.deps import PACKAGE_FEED_EXTRA
from cephalo_release.domain.common import as_uuid
from cephalo_release.domain.deployments import record_finished, record_task_started
from cephalo_release.domain.package_triggers import on_package_pushed

DEPLOYMENT_FINISHED_CONSUMER = "release-service--deployment-finished"
TASK_STATE_CHANGED_CONSUMER = "release-service--task-state-changed"
PACKAGE_PUSHED_CONSUMER = "release-service--package-pushed"


async def on_deployment_finished(session: AsyncSession, envelope: Envelope) -> None:
    await record_finished(Repositories(session), envelope.payload(DeploymentFinishedV1))


async def on_task_state_changed(session: AsyncSession, envelope: Envelope) -> None:
    change = envelope.payload(TaskStateChangedV1)
    if change.state == "Executing" and change.deployment_id:
        await record_task_started(Repositories(session), change.task_id, change.deployment_id)


def package_pushed_handler(runtime: Runtime) -> SessionHandler:
    """Package triggers answer a push; the feed client lives on the runtime."""

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        pushed = envelope.payload(PackagePushedV1)
        space_id = as_uuid(envelope.cephalospace)
        if space_id is None:
            return
        await on_package_pushed(
            Repositories(session),
            space_id,
            (pushed.package_id, pushed.version),
            runtime.extras.get(PACKAGE_FEED_EXTRA),
            utc_now(),
        )

    return handle


def _consumer(
    runtime: Runtime,
    name: str,
    kind: EventKind,
    handle: SessionHandler,
    stream: StreamSpec = EVT_DEPLOY,
) -> ConsumerSpec:
    messaging = runtime.settings.messaging
    return ConsumerSpec(
        name=name,
        stream=stream.name,
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
        _consumer(
            runtime,
            PACKAGE_PUSHED_CONSUMER,
            PACKAGE_PUSHED,
            package_pushed_handler(runtime),
            EVT_FEED,
        ),
    ]
