"""What the orchestrator consumes: `deployment.requested` from release-service, `step.log` and
`step.finished` from agent-gateway. A message that cannot be read goes to the dead letters;
any other failure is redelivered.

Requests and verdicts go through the inbox (applied once, ever). Log batches do not: each
line is already stored once by its unique (step run, sequence), and an inbox row per batch
would double the writes of the busiest consumer and grow without bound.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.contracts import (
    DEPLOYMENT_REQUESTED,
    STEP_FINISHED,
    STEP_LOG,
    DeploymentRequestedV1,
    StepFinishedV1,
    StepLogV1,
)
from cephalo_common.db.inbox import first_delivery
from cephalo_common.db.session import unit_of_work
from cephalo_common.errors import Invalid
from cephalo_common.http.app import Runtime
from cephalo_common.ids import utc_now
from cephalo_common.messaging.broker import (
    BatchHandler,
    ConsumerSpec,
    Handler,
    PermanentFailure,
)
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.messaging.streams import EVT_AGENT, EVT_RELEASE
from cephalo_orchestrator.db.models import InboxMessage
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain.steps import record_step_finished, record_step_log
from cephalo_orchestrator.domain.tasks import accept_deployment

DEPLOYMENT_REQUESTED_CONSUMER = "deploy-orchestrator--deployment-requested"
STEP_LOG_CONSUMER = "deploy-orchestrator--step-log"
STEP_FINISHED_CONSUMER = "deploy-orchestrator--step-finished"
RUNNER_KEY = "runner"
AGENT_EVENT_BATCH = 100  # step.log / step.finished applied per transaction at most

Payload = TypeVar("Payload", bound=BaseModel)


def _payload(envelope: Envelope, model: type[Payload]) -> Payload:
    try:
        return envelope.payload(model)
    except ValidationError as error:
        raise PermanentFailure(f"unreadable {envelope.type} {envelope.id}: {error}") from error


WakingHandler = Callable[[AsyncSession, Envelope], Awaitable[bool]]


async def on_deployment_requested(session: AsyncSession, envelope: Envelope) -> bool:
    """True when a task was queued (the runner may start it at once)."""
    request = _payload(envelope, DeploymentRequestedV1)
    try:
        queued = await accept_deployment(
            Repositories(session),
            envelope.cephalospace,
            request,
            now=utc_now(),
            caused_by=envelope,
        )
    except Invalid as error:
        raise PermanentFailure(str(error)) from error
    return queued is not None


async def on_step_log(session: AsyncSession, envelope: Envelope) -> bool:
    message = _payload(envelope, StepLogV1)
    try:
        return await record_step_log(Repositories(session), message, now=utc_now())
    except Invalid as error:
        raise PermanentFailure(str(error)) from error


async def on_step_finished(session: AsyncSession, envelope: Envelope) -> bool:
    message = _payload(envelope, StepFinishedV1)
    try:
        return await record_step_finished(Repositories(session), message, now=utc_now())
    except Invalid as error:
        raise PermanentFailure(str(error)) from error


def _wake_runner(runtime: Runtime) -> None:
    runner = runtime.extras.get(RUNNER_KEY)
    if runner is not None:
        runner.wake()


def _by_task(envelopes: list[Envelope]) -> list[Envelope]:
    """One lock order for every batch: tasks ascending (each handler locks its task first)."""
    return sorted(envelopes, key=lambda envelope: str(envelope.data.get("task_id", "")))


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    messaging = runtime.settings.messaging

    def spec(
        name: str,
        stream: str,
        filter_subject: str,
        handle: WakingHandler,
        *,
        once: bool,
        batch_size: int = 1,
    ) -> ConsumerSpec:
        """`once`: through the inbox (applied once, ever). `batch_size` > 1: a fetched batch
        is applied in one transaction (group commit), one commit per batch instead of per
        message; a batch that fails is applied message by message."""
        inbox = name if once else None
        return ConsumerSpec(
            name=name,
            stream=stream,
            filter_subject=filter_subject,
            handler=_applied(runtime, handle, inbox),
            batch_handler=_batch_applied(runtime, handle, inbox) if batch_size > 1 else None,
            batch_size=max(batch_size, 10),
            max_deliver=messaging.consumer_max_deliver,
            backoff_seconds=tuple(messaging.consumer_backoff_seconds),
            ack_wait_seconds=messaging.consumer_ack_wait_seconds,
        )

    return [
        spec(
            DEPLOYMENT_REQUESTED_CONSUMER,
            EVT_RELEASE.name,
            DEPLOYMENT_REQUESTED.filter_subject,
            on_deployment_requested,
            once=True,
        ),
        spec(
            STEP_LOG_CONSUMER,
            EVT_AGENT.name,
            STEP_LOG.filter_subject,
            on_step_log,
            once=False,
            batch_size=AGENT_EVENT_BATCH,
        ),
        spec(
            STEP_FINISHED_CONSUMER,
            EVT_AGENT.name,
            STEP_FINISHED.filter_subject,
            on_step_finished,
            once=True,
            batch_size=AGENT_EVENT_BATCH,
        ),
    ]


async def _apply(
    session: AsyncSession, handle: WakingHandler, inbox: str | None, envelope: Envelope
) -> bool:
    if inbox is not None and not await first_delivery(session, InboxMessage, inbox, envelope.id):
        return False
    return await handle(session, envelope)


def _applied(runtime: Runtime, handle: WakingHandler, inbox: str | None) -> Handler:
    """One message, one transaction; the runner is woken only when the committed change made
    a task due (waking it per message would run its tick per message)."""

    async def handler(envelope: Envelope) -> None:
        async with unit_of_work(runtime.sessionmaker) as session:
            due = await _apply(session, handle, inbox, envelope)
        if due:
            _wake_runner(runtime)

    return handler


def _batch_applied(runtime: Runtime, handle: WakingHandler, inbox: str | None) -> BatchHandler:
    async def handler(envelopes: list[Envelope]) -> None:
        due = False
        async with unit_of_work(runtime.sessionmaker) as session:
            for envelope in _by_task(envelopes):
                due = await _apply(session, handle, inbox, envelope) or due
        if due:
            _wake_runner(runtime)

    return handler
