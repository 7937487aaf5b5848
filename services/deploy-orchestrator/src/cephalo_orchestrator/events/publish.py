"""Events and commands this service sends, written to the outbox in the caller's transaction.

Every message about a task carries the correlation id of the deployment request that
created it, so one deployment can be followed across services.
"""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.agent_protocol import ScriptSyntax
from cephalo_common.contracts import (
    DEPLOYMENT_FINISHED,
    STEP_DISPATCH,
    TASK_STATE_CHANGED,
    DeploymentFinishedV1,
    EventKind,
    PackageAcquisitionV1,
    ScriptActionSnapshot,
    StepDispatchV1,
    TaskStateChangedV1,
)
from cephalo_common.db.outbox import emit
from cephalo_common.messaging.envelope import Envelope, new_envelope
from cephalo_orchestrator.db.models import OutboxEvent, ServerTask, StepRun
from cephalo_orchestrator.domain.system_variables import StepVariables

SOURCE = "cephalo://deploy-orchestrator"


def _emit(
    session: AsyncSession,
    kind: EventKind,
    task: ServerTask,
    data: BaseModel,
    subject: str,
    caused_by: Envelope | None,
) -> Envelope:
    envelope = new_envelope(
        source=SOURCE,
        type=kind.type,
        space=str(task.space_id),
        data=data,
        subject=subject,
        caused_by=caused_by,
        correlation_id=task.correlation_id,
    )
    return emit(session, OutboxEvent, kind, envelope)


def task_state_changed(
    session: AsyncSession, task: ServerTask, caused_by: Envelope | None = None
) -> Envelope:
    data = TaskStateChangedV1(
        task_id=str(task.id),
        deployment_id=str(task.deployment_id),
        state=task.state,
        reason=task.reason,
    )
    return _emit(session, TASK_STATE_CHANGED, task, data, f"tasks/{task.id}", caused_by)


def deployment_finished(
    session: AsyncSession, task: ServerTask, caused_by: Envelope | None = None
) -> Envelope:
    data = DeploymentFinishedV1(
        deployment_id=str(task.deployment_id),
        task_id=str(task.id),
        release_id=str(task.release_id),
        project_id=str(task.project_id),
        environment_id=str(task.environment_id),
        state=task.state,
        error=task.reason if task.state != "Success" else None,
    )
    return _emit(
        session, DEPLOYMENT_FINISHED, task, data, f"deployments/{task.deployment_id}", caused_by
    )


def step_dispatch(
    session: AsyncSession,
    task: ServerTask,
    run: StepRun,
    *,
    action: ScriptActionSnapshot,
    script_body: str,
    syntax: ScriptSyntax,
    variables: StepVariables,
    packages: list[PackageAcquisitionV1],
    default_timeout_seconds: int | None = None,
) -> Envelope:
    data = StepDispatchV1(
        ticket=run.ticket,
        task_id=str(task.id),
        step_run_id=str(run.id),
        machine_id=str(run.machine_id),
        attempt=run.attempt,
        script_body=script_body,
        syntax=syntax,
        variables=variables.values,
        sensitive_variables=variables.sensitive_names,
        timeout_seconds=step_timeout(action) or default_timeout_seconds,
        action_type=action.action_type,
        action_properties=dict(action.properties),
        packages=packages,
    )
    return _emit(session, STEP_DISPATCH, task, data, f"step-runs/{run.id}", None)


def step_timeout(action: ScriptActionSnapshot) -> int | None:
    """The step's `timeout_seconds`: a positive whole number, as a number or as text."""
    value = action.properties.get("timeout_seconds")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
