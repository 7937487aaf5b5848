"""A task's plan: the release's step snapshot read as runnable steps, and the words we log.

Steps run one after another; the machines of one step run in parallel. Everything here is
pure so the rules are tested without a database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cephalo_common.agent_protocol import ScriptSyntax
from cephalo_common.contracts import ScriptActionSnapshot
from cephalo_orchestrator.domain.targets import Machine

STEP_START_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0)


class InvalidStep(Exception):
    """The snapshot cannot be run as it is; the task fails with this message."""


@dataclass(frozen=True)
class StepPlan:
    index: int
    name: str
    target_roles: tuple[str, ...]
    script_body: str
    syntax: ScriptSyntax


def step_plan(steps: Sequence[Mapping[str, Any]], index: int) -> StepPlan:
    """Step `index` of the snapshot, with its script checked before anything is dispatched."""
    if not steps:
        raise InvalidStep("the release has no steps to deploy")
    if not 0 <= index < len(steps):
        raise InvalidStep(f"the release has no step {index + 1}")
    try:
        action = ScriptActionSnapshot.model_validate(steps[index])
    except ValidationError as error:
        raise InvalidStep(f"step {index + 1} of the release is malformed: {error}") from error
    body = action.properties.get("script_body")
    if not isinstance(body, str) or not body.strip():
        raise InvalidStep(f'step "{action.name}" has no script to run')
    raw_syntax = action.properties.get("syntax") or ScriptSyntax.BASH.value
    try:
        syntax = ScriptSyntax(str(raw_syntax).lower())
    except ValueError as error:
        known = ", ".join(item.value for item in ScriptSyntax)
        raise InvalidStep(
            f'step "{action.name}" uses script syntax {raw_syntax!r}; supported: {known}'
        ) from error
    roles = tuple(dict.fromkeys(role.strip() for role in action.target_roles if role.strip()))
    return StepPlan(index, action.name, roles, body, syntax)


def is_last_step(steps: Sequence[Mapping[str, Any]], index: int) -> bool:
    return index >= len(steps) - 1


def retry_delay(failures: int) -> float:
    """Back-off before asking agent-gateway again after `failures` failed attempts."""
    position = min(max(failures - 1, 0), len(STEP_START_BACKOFF_SECONDS) - 1)
    return STEP_START_BACKOFF_SECONDS[position]


def deploying_line(project: str, version: str, environment: str) -> str:
    return f"Deploying {project} release {version} to {environment}"


def waiting_reason(deployment_id: str, environment: str) -> str:
    return f"waiting for deployment {deployment_id} of the same project to {environment}"


def capacity_reason(max_concurrent: int) -> str:
    return (
        f"waiting for a free task slot (an orchestrator runs at most {max_concurrent} "
        "tasks at once)"
    )


def no_targets_reason(environment: str, roles: Sequence[str], disabled: int = 0) -> str:
    if roles:
        reason = f"No deployment targets in {environment} have any of the roles: {', '.join(roles)}"
    else:
        reason = f"No deployment targets in {environment}"
    if disabled:
        reason += (
            f" ({disabled} matching {'target is' if disabled == 1 else 'targets are'} disabled)"
        )
    return reason


def running_step_line(step: StepPlan, machines: Sequence[Machine]) -> str:
    names = ", ".join(machine.name for machine in machines)
    return f'Running step {step.index + 1} "{step.name}" on {names}'


def finished_line(
    step_name: str, machine_name: str, exit_code: int | None, error: str | None
) -> str:
    if exit_code is None:
        return f"{step_name} on {machine_name} finished without an exit code: {error or 'unknown error'}"
    line = f"{step_name} on {machine_name} finished with exit code {exit_code}"
    return f"{line}: {error}" if error else line


@dataclass(frozen=True)
class RunFailure:
    machine_name: str
    exit_code: int | None


def step_failed_reason(step_name: str, failures: Sequence[RunFailure]) -> str:
    """Which step failed on which machines, with their exit codes."""
    parts = [
        f"{failure.machine_name} (exit code {failure.exit_code})"
        if failure.exit_code is not None
        else f"{failure.machine_name} (no exit code)"
        for failure in sorted(failures, key=lambda item: item.machine_name.lower())
    ]
    return f'Step "{step_name}" failed on {", ".join(parts)}'


def unreachable_reason(step_name: str, error: str, seconds: float) -> str:
    return (
        f'Could not find the deployment targets for step "{step_name}": {error} '
        f"(gave up after {seconds:g} seconds)"
    )


SUCCESS_LINE = "Deployment completed successfully"
