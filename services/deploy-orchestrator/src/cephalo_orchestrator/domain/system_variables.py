"""Variables per (step, target): the release's scoped values resolved for the context, with
system variables (`Cephalo.*`, `Octopus.*` aliases), prompted values and the output
variables of earlier steps.

Precedence, highest first: system variables and output variables (they are system values:
a user value can never spoof them), prompted values, the request's flat `variables`, then
the release's scoped values by `cephalo_common.variables` precedence.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cephalo_common.variables import (
    OutputVariables,
    ResolutionContext,
    SystemVariables,
    VariableValue,
    is_system_variable_name,
    resolve,
    system_variable_values,
)
from cephalo_common.variables.ast import fold
from cephalo_orchestrator.domain.planning import PlannedAction, PlannedStep, Target


@dataclass(frozen=True)
class DeploymentContext:
    space_id: str
    task_id: str
    deployment_id: str
    project_id: str
    project_name: str
    release_id: str
    release_number: str
    environment_id: str
    environment_name: str
    channel_id: str | None = None
    channel_name: str | None = None
    tenant_id: str | None = None
    deployed_by: str | None = None


@dataclass(frozen=True)
class StepVariables:
    values: dict[str, str]
    sensitive_names: list[str] = field(default_factory=list)
    sensitive_values: frozenset[str] = frozenset()


def system_variables(
    context: DeploymentContext,
    *,
    step: PlannedStep | None = None,
    action: PlannedAction | None = None,
    machine: Target | None = None,
    error: str | None = None,
) -> dict[str, str]:
    """`Cephalo.*` names (the `Octopus.*` aliases are added by `system_variable_values`)."""
    names = SystemVariables
    values = {
        names.SPACE_ID: context.space_id,
        names.TASK_ID: context.task_id,
        names.DEPLOYMENT_ID: context.deployment_id,
        names.PROJECT_ID: context.project_id,
        names.PROJECT_NAME: context.project_name,
        names.RELEASE_ID: context.release_id,
        names.RELEASE_NUMBER: context.release_number,
        names.ENVIRONMENT_ID: context.environment_id,
        names.ENVIRONMENT_NAME: context.environment_name,
    }
    optional = {
        names.RELEASE_CHANNEL_NAME: context.channel_name,
        names.DEPLOYMENT_TENANT_ID: context.tenant_id,
        names.DEPLOYMENT_CREATED_BY_USERNAME: context.deployed_by,
    }
    values.update({name: value for name, value in optional.items() if value})
    if step is not None:
        values.update(
            {
                names.STEP_ID: step.step_id,
                names.STEP_NAME: step.name,
                names.STEP_NUMBER: str(step.number),
                names.ACTION_TARGET_ROLES: ",".join(step.roles),
            }
        )
    if action is not None:
        values.update(
            {
                names.ACTION_ID: action.id,
                names.ACTION_NAME: action.name,
                names.ACTION_NUMBER: str(action.index + 1),
            }
        )
    if machine is not None:
        values.update(
            {
                names.MACHINE_ID: str(machine.id),
                names.MACHINE_NAME: machine.name,
                names.MACHINE_ROLES: ",".join(machine.roles),
            }
        )
    if error:
        values["Cephalo.Deployment.Error"] = error
        values["Cephalo.Deployment.ErrorDetail"] = error
    return values


def resolve_step_variables(
    context: DeploymentContext,
    values: Sequence[VariableValue],
    *,
    flat: Mapping[str, str] = {},
    prompted: Mapping[str, str] = {},
    outputs: OutputVariables | None = None,
    step: PlannedStep | None = None,
    action: PlannedAction | None = None,
    machine: Target | None = None,
    error: str | None = None,
) -> StepVariables:
    """The variables one action sees on one machine (no machine: the deployment's view)."""
    system = system_variables(context, step=step, action=action, machine=machine, error=error)
    captured = outputs.values() if outputs is not None else []
    scope = ResolutionContext(
        environment=context.environment_id,
        machine=str(machine.id) if machine else None,
        machine_roles=frozenset(machine.roles) if machine else frozenset(),
        step_roles=frozenset(step.roles) if step else frozenset(),
        action=action.id if action else None,
        channel=context.channel_id,
        tenant=context.tenant_id,
        project=context.project_id,
    )
    resolution = resolve([*values, *captured, *system_variable_values(system)], scope)
    winners = {key: v.winner for key, v in resolution.variables.items() if v.winner is not None}
    result = {winner.name: winner.value for winner in winners.values()}
    sensitive = {key for key, winner in winners.items() if winner.is_sensitive}
    for overlay in (flat, prompted):
        _overlay(result, overlay)
    names = [name for name in result if fold(name) in sensitive]
    return StepVariables(result, names, frozenset(result[name] for name in names))


def _overlay(values: dict[str, str], extra: Mapping[str, str]) -> None:
    """Put `extra` over user values (never over system names), replacing any spelling."""
    by_key = {fold(name): name for name in values}
    for name, value in extra.items():
        if is_system_variable_name(name):
            continue
        existing = by_key.get(fold(name))
        if existing is not None:
            del values[existing]
        values[name] = value
        by_key[fold(name)] = name


def output_variables(
    captured: Iterable[tuple[str, str, str, Mapping[str, str], Iterable[str]]],
) -> OutputVariables:
    """Output variables from finished runs: (action name, machine name, machine id, values,
    sensitive names), in the order the runs finished."""
    outputs = OutputVariables()
    for action_name, machine_name, machine_id, values, sensitive in captured:
        secret = {fold(name) for name in sensitive}
        for name, value in values.items():
            outputs.record(
                action_name,
                name,
                value,
                machine=machine_name,
                machine_id=machine_id,
                sensitive=fold(name) in secret,
            )
    return outputs
