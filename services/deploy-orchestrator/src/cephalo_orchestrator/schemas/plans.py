"""The dry-run plan as the API renders it."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, Field

from cephalo_orchestrator.domain.dry_run import DryRun
from cephalo_orchestrator.domain.planning import Decision, PlannedRun, RunKey


class PlannedTarget(BaseModel):
    machine_id: uuid.UUID
    machine_name: str
    roles: list[str]
    health_status: str


class ExcludedTarget(BaseModel):
    machine_id: uuid.UUID
    machine_name: str
    reason: str


class PlannedActionView(BaseModel):
    index: int = Field(description="Position of the action in the release's snapshot (from 0).")
    id: str
    name: str
    action_type: str
    runs: bool
    reason: str | None = Field(description="Why the action is left out, when it is.")


class PlannedStepView(BaseModel):
    number: int
    step_id: str
    name: str
    group: int = Field(description="Steps of one group start together (start with previous).")
    condition: str
    is_required: bool
    window_size: int | None
    max_parallel_targets: int
    runs: bool
    reason: str | None = Field(description="Why the step does not run, when it does not.")
    actions: list[PlannedActionView]
    targets: list[PlannedTarget]
    excluded_targets: list[ExcludedTarget]


class PlannedRunView(BaseModel):
    position: int
    step_number: int
    step_name: str
    action_index: int
    action_name: str
    machine_id: uuid.UUID | None
    machine_name: str | None
    starts_after: int | None = Field(
        description="The position of the run whose end lets this one start (null: at once)."
    )
    variables: dict[str, str] | None = Field(
        None, description="Non-sensitive values this run would see (omitted on request)."
    )
    sensitive_variables: list[str] | None = Field(
        None, description="Names of the sensitive variables (their values are never shown)."
    )


class DeploymentPlanView(BaseModel):
    can_deploy: bool
    error: str | None = Field(description="Why the deployment would fail before any step ran.")
    max_parallel_steps: int
    steps: list[PlannedStepView]
    order: list[PlannedRunView]

    @classmethod
    def of(cls, result: DryRun) -> DeploymentPlanView:
        plan = result.plan
        decided = {decision.step.number: decision for decision in result.decisions}
        positions = {run.key: run.position for run in result.order}
        return cls(
            can_deploy=plan.error is None,
            error=plan.error,
            max_parallel_steps=plan.max_parallel_steps,
            steps=[_step(step_number, decided, result) for step_number in _numbers(result)],
            order=[_run(run, result, positions) for run in result.order],
        )


def _numbers(result: DryRun) -> list[int]:
    return [step.number for step in result.plan.steps]


def _step(number: int, decided: dict[int, Decision], result: DryRun) -> PlannedStepView:
    step = next(s for s in result.plan.steps if s.number == number)
    decision = decided.get(number)
    runs = decision.runs if decision else False
    reason = decision.reason if decision else step.skip_reason
    kept = {a.index for a in decision.step.actions} if decision and decision.runs else set()
    return PlannedStepView(
        number=step.number,
        step_id=step.step_id,
        name=step.name,
        group=step.group,
        condition=step.condition,
        is_required=step.is_required,
        window_size=step.window_size,
        max_parallel_targets=step.max_parallel_targets,
        runs=runs,
        reason=reason,
        actions=[
            PlannedActionView(
                index=action.index,
                id=action.id,
                name=action.name,
                action_type=action.action_type,
                runs=action.index in kept,
                reason=None
                if action.index in kept
                else action.skip_reason or ("its run condition is false" if runs else reason),
            )
            for action in step.actions
        ],
        targets=[
            PlannedTarget(
                machine_id=t.id,
                machine_name=t.name,
                roles=list(t.roles),
                health_status=t.health_status,
            )
            for t in step.targets
        ],
        excluded_targets=[
            ExcludedTarget(machine_id=e.machine_id, machine_name=e.machine_name, reason=e.reason)
            for e in step.excluded
        ],
    )


def _run(run: PlannedRun, result: DryRun, positions: dict[RunKey, int]) -> PlannedRunView:
    step, action = result.plan.action(run.key.action)
    machine = next((t for t in step.targets if t.id == run.key.machine_id), None)
    variables = result.variables.get(run.key)
    return PlannedRunView(
        position=run.position,
        step_number=step.number,
        step_name=step.name,
        action_index=action.index,
        action_name=action.name,
        machine_id=machine.id if machine else None,
        machine_name=machine.name if machine else None,
        starts_after=positions[run.after] if run.after is not None else None,
        variables={
            name: value
            for name, value in variables.values.items()
            if name not in set(variables.sensitive_names)
        }
        if variables
        else None,
        sensitive_variables=sorted(variables.sensitive_names) if variables else None,
    )
