"""System variables every step sees, under Octopus's names so existing scripts keep working.

User variables never override these (Octopus's `Private` scope rule: built-ins win).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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


def system_variables(
    context: DeploymentContext, *, step_name: str, machine_id: str, machine_name: str
) -> dict[str, str]:
    return {
        "Octopus.Space.Id": context.space_id,
        "Octopus.Task.Id": context.task_id,
        "Octopus.Deployment.Id": context.deployment_id,
        "Octopus.Project.Id": context.project_id,
        "Octopus.Project.Name": context.project_name,
        "Octopus.Release.Id": context.release_id,
        "Octopus.Release.Number": context.release_number,
        "Octopus.Environment.Id": context.environment_id,
        "Octopus.Environment.Name": context.environment_name,
        "Octopus.Machine.Id": machine_id,
        "Octopus.Machine.Name": machine_name,
        "Octopus.Step.Name": step_name,
        "Octopus.Action.Name": step_name,
    }


def step_variables(user: Mapping[str, str], system: Mapping[str, str]) -> dict[str, str]:
    """User variables, then system ones on top (names compare case-insensitively)."""
    reserved = {name.lower() for name in system}
    merged = {name: value for name, value in user.items() if name.lower() not in reserved}
    merged.update(system)
    return merged
