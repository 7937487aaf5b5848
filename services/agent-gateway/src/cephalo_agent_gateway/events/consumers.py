"""What agent-gateway consumes: `step.dispatch` commands (a work queue), idempotently."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_agent_gateway.db.models import InboxMessage
from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_agent_gateway.domain.script_runs import record_dispatch
from cephalo_agent_gateway.runtime import find_gateway
from cephalo_common.contracts import STEP_DISPATCH
from cephalo_common.db.inbox import idempotent_handler
from cephalo_common.http.app import Runtime
from cephalo_common.messaging.broker import ConsumerSpec, Handler
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.messaging.streams import CMD_AGENT

DISPATCH_STEP_CONSUMER = "agent-gateway--dispatch-step"


async def on_step_dispatch(session: AsyncSession, envelope: Envelope) -> None:
    """Only records the run; the supervisor drives it, so the message is acked at once."""
    await record_dispatch(Repositories(session), envelope)


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
    return [
        ConsumerSpec(
            name=DISPATCH_STEP_CONSUMER,
            stream=CMD_AGENT.name,
            filter_subject=STEP_DISPATCH.filter_subject,
            handler=_waking_supervisor(runtime, handler),
            max_deliver=messaging.consumer_max_deliver,
            backoff_seconds=tuple(messaging.consumer_backoff_seconds),
            ack_wait_seconds=messaging.consumer_ack_wait_seconds,
        )
    ]
