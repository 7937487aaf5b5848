"""What agent-gateway consumes: `step.dispatch` and `step.cancel` commands (a work queue),
idempotently through the inbox."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_agent_gateway.db.models import InboxMessage
from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.domain.script_runs import record_dispatch, request_cancel
from cephalo_agent_gateway.events.contracts import STEP_CANCEL, StepCancelV1
from cephalo_agent_gateway.runtime import find_gateway
from cephalo_common.contracts import STEP_DISPATCH
from cephalo_common.db.inbox import idempotent_handler
from cephalo_common.errors import Conflict, NotFound
from cephalo_common.http.app import Runtime
from cephalo_common.logging import get_logger
from cephalo_common.messaging.broker import ConsumerSpec, Handler, PermanentFailure
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.messaging.streams import CMD_AGENT

log = get_logger(__name__)
DISPATCH_STEP_CONSUMER = "agent-gateway--dispatch-step"
CANCEL_STEP_CONSUMER = "agent-gateway--cancel-step"


async def on_step_dispatch(session: AsyncSession, envelope: Envelope) -> None:
    """Only records the run; the supervisor drives it, so the message is acked at once."""
    await record_dispatch(Repositories(session), envelope)


async def on_step_cancel(session: AsyncSession, envelope: Envelope) -> None:
    """Record the cancellation; a run that already finished is left alone.

    A cancel can overtake its dispatch (two consumers): an unknown ticket is retried with the
    consumer's back-off, and dead-lettered if no dispatch ever comes.
    """
    try:
        cancel = envelope.payload(StepCancelV1)
        space_id = uuid.UUID(envelope.cephalospace)
    except (ValidationError, ValueError) as error:
        raise PermanentFailure(f"malformed step cancel: {error}") from error
    try:
        await request_cancel(Repositories(session), space_id, cancel.ticket)
    except Conflict as error:
        log.info("nothing to cancel", ticket=cancel.ticket, reason=str(error))
    except NotFound as error:
        raise LookupError(f"no dispatch recorded yet for ticket {cancel.ticket}") from error


def _cancelling(runtime: Runtime, handler: Handler) -> Handler:
    async def handle(envelope: Envelope) -> None:
        await handler(envelope)
        gateway = find_gateway(runtime)
        ticket = envelope.data.get("ticket") if isinstance(envelope.data, dict) else None
        if gateway is not None and isinstance(ticket, str):
            gateway.supervisor.cancel(ticket)

    return handle


def _waking_supervisor(runtime: Runtime, handler: Handler) -> Handler:
    async def handle(envelope: Envelope) -> None:
        await handler(envelope)
        gateway = find_gateway(runtime)
        if gateway is not None:
            gateway.supervisor.wake()

    return handle


def consumers(runtime: Runtime) -> Sequence[ConsumerSpec]:
    messaging = runtime.settings.messaging
    handler = idempotent_handler(
        runtime.sessionmaker, InboxMessage, DISPATCH_STEP_CONSUMER, on_step_dispatch
    )
    cancel_handler = idempotent_handler(
        runtime.sessionmaker, InboxMessage, CANCEL_STEP_CONSUMER, on_step_cancel
    )
    return [
        ConsumerSpec(
            name=DISPATCH_STEP_CONSUMER,
            stream=CMD_AGENT.name,
            filter_subject=STEP_DISPATCH.filter_subject,
            handler=_waking_supervisor(runtime, handler),
            max_deliver=messaging.consumer_max_deliver,
            backoff_seconds=tuple(messaging.consumer_backoff_seconds),
            ack_wait_seconds=messaging.consumer_ack_wait_seconds,
        ),
        ConsumerSpec(
            name=CANCEL_STEP_CONSUMER,
            stream=CMD_AGENT.name,
            filter_subject=STEP_CANCEL.filter_subject,
            handler=_cancelling(runtime, cancel_handler),
            max_deliver=messaging.consumer_max_deliver,
            backoff_seconds=tuple(messaging.consumer_backoff_seconds),
            ack_wait_seconds=messaging.consumer_ack_wait_seconds,
        ),
    ]
