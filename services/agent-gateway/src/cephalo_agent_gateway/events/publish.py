"""Events this service announces, written to the outbox in the caller's transaction."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_agent_gateway.db.models import Machine, OutboxEvent, ScriptRun
from cephalo_agent_gateway.events.contracts import (
    TARGET_DELETED,
    TARGET_HEALTH_CHANGED,
    TARGET_HOST_KEY_CHANGED,
    TARGET_REGISTERED,
    TargetDeletedV1,
    TargetHealthChangedV1,
    TargetHostKeyChangedV1,
    TargetRegisteredV1,
)
from cephalo_common.contracts import STEP_FINISHED, STEP_LOG, EventKind, StepFinishedV1, StepLogV1
from cephalo_common.db.outbox import emit
from cephalo_common.messaging.envelope import Envelope, new_envelope

SOURCE = "cephalo://agent-gateway"


def step_log(session: AsyncSession, run: ScriptRun, data: StepLogV1) -> Envelope:
    return _emit(session, run, STEP_LOG, data)


def step_finished(session: AsyncSession, run: ScriptRun, data: StepFinishedV1) -> Envelope:
    return _emit(session, run, STEP_FINISHED, data)


def target_registered(session: AsyncSession, machine: Machine) -> Envelope:
    data = TargetRegisteredV1(
        machine_id=str(machine.id),
        name=machine.name,
        kind=machine.kind,
        mode=machine.mode,
        thumbprint=machine.thumbprint,
    )
    return _emit_for_machine(session, machine, TARGET_REGISTERED, data)


def target_deleted(session: AsyncSession, machine: Machine) -> Envelope:
    data = TargetDeletedV1(
        machine_id=str(machine.id),
        name=machine.name,
        kind=machine.kind,
        thumbprint=machine.thumbprint,
    )
    return _emit_for_machine(session, machine, TARGET_DELETED, data)


def target_health_changed(
    session: AsyncSession, machine: Machine, data: TargetHealthChangedV1
) -> Envelope:
    return _emit_for_machine(session, machine, TARGET_HEALTH_CHANGED, data)


def target_host_key_changed(
    session: AsyncSession, machine: Machine, data: TargetHostKeyChangedV1
) -> Envelope:
    return _emit_for_machine(session, machine, TARGET_HOST_KEY_CHANGED, data)


def _emit_for_machine(
    session: AsyncSession, machine: Machine, kind: EventKind, data: BaseModel
) -> Envelope:
    collection = "workers" if machine.kind == "worker" else "machines"
    envelope = new_envelope(
        source=SOURCE,
        type=kind.type,
        space=str(machine.space_id),
        data=data,
        subject=f"{collection}/{machine.id}",
    )
    return emit(session, OutboxEvent, kind, envelope)


def _emit(session: AsyncSession, run: ScriptRun, kind: EventKind, data: BaseModel) -> Envelope:
    """Carry the dispatch's correlation forward, so a step's events trace back to its task."""
    envelope = new_envelope(
        source=SOURCE,
        type=kind.type,
        space=str(run.space_id),
        data=data,
        subject=f"tasks/{run.task_id}/step-runs/{run.step_run_id}",
        correlation_id=run.correlation_id,
    )
    envelope.causationid = run.causation_id
    return emit(session, OutboxEvent, kind, envelope)
