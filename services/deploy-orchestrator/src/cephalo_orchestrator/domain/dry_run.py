"""The dry-run plan: what a deployment would do, built by the same rules a task runs by and
creating nothing. Order assumes every run succeeds and runs end first-started-first; run
conditions that read output variables see none (no step has run yet)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from cephalo_common.contracts import DeploymentRequestedV1
from cephalo_common.errors import Invalid, NotFound, Unavailable
from cephalo_orchestrator.domain import plan as words
from cephalo_orchestrator.domain.plan import InvalidStep
from cephalo_orchestrator.domain.planning import (
    Decision,
    DeploymentPlan,
    Limits,
    PlannedRun,
    PlannedStep,
    RunKey,
    build_plan,
    simulate,
)
from cephalo_orchestrator.domain.system_variables import (
    DeploymentContext,
    StepVariables,
    resolve_step_variables,
)
from cephalo_orchestrator.domain.targets import (
    MachineDirectory,
    TargetsRefused,
    TargetsUnavailable,
)

PLAN_ID = "(dry run)"


@dataclass(frozen=True)
class DryRun:
    plan: DeploymentPlan
    decisions: list[Decision]
    order: list[PlannedRun]
    variables: dict[RunKey, StepVariables]


async def dry_run(
    space_id: uuid.UUID,
    request: DeploymentRequestedV1,
    directory: MachineDirectory,
    *,
    limits: Limits,
    with_variables: bool = True,
) -> DryRun:
    """Plan `request` as a task would, asking agent-gateway for the environment's machines."""
    if request.space_id is not None and request.space_id.lower() != str(space_id):
        raise Invalid(f"space_id {request.space_id} does not match the space in the address")
    environment_id = _uuid(request.environment_id, "environment_id")
    try:
        actions = words.read_actions([a.model_dump(mode="json") for a in request.steps])
        for action in actions:
            words.action_script(action)
    except InvalidStep as error:
        raise Invalid(str(error)) from error
    try:
        machines = await directory.find_machines(space_id, environment_id, ())
    except TargetsUnavailable as error:
        raise Unavailable(str(error)) from error
    except TargetsRefused as error:
        if error.status == 404:
            raise NotFound(str(error)) from error
        raise Invalid(str(error)) from error
    planned = build_plan(
        actions,
        machines,
        request.options,
        environment_name=request.environment_name,
        limits=limits,
    )
    context = _context(space_id, request)

    def resolved(step: PlannedStep | None = None, key: RunKey | None = None) -> StepVariables:
        action = machine = None
        if step is not None and key is not None:
            action = next(a for a in step.actions if a.index == key.action)
            machine = next((t for t in step.targets if t.id == key.machine_id), None)
        return resolve_step_variables(
            context,
            request.variable_values,
            flat=request.variables,
            prompted=request.options.prompted_values,
            step=step,
            action=action,
            machine=machine,
        )

    order, decisions = simulate(planned, variables_for=lambda step: resolved(step).values)
    variables = (
        {run.key: resolved(planned.action(run.key.action)[0], run.key) for run in order}
        if with_variables
        else {}
    )
    return DryRun(planned, decisions, order, variables)


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError as error:
        raise Invalid(f"{field} {value!r} is not a UUID") from error


def _context(space_id: uuid.UUID, request: DeploymentRequestedV1) -> DeploymentContext:
    return DeploymentContext(
        space_id=str(space_id),
        task_id=PLAN_ID,
        deployment_id=request.deployment_id,
        project_id=request.project_id,
        project_name=request.project_name,
        release_id=request.release_id,
        release_number=request.release_version,
        environment_id=request.environment_id,
        environment_name=request.environment_name,
        channel_id=request.channel_id,
        channel_name=request.channel_name,
        tenant_id=request.tenant_id,
        deployed_by=request.deployed_by,
    )
