"""A task's plan: the release's step snapshot read as runnable steps, and the words we log.

What runs where is decided by `planning`; this module checks each action's script and
holds the sentences the task log and the task's reason use. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from cephalo_common.agent_protocol import ExitCodes, ScriptSyntax
from cephalo_common.contracts import ScriptActionSnapshot

STEP_START_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 15.0)


class InvalidStep(Exception):
    """The snapshot cannot be run as it is; the task fails with this message."""


@dataclass(frozen=True)
class ActionScript:
    """What an action hands the agent: its script (empty for non-script actions) and syntax."""

    body: str
    syntax: ScriptSyntax


SCRIPT_ACTION = "cephalo.script"


def action_script(action: ScriptActionSnapshot) -> ActionScript:
    """The action's script, checked before anything is dispatched; only an inline script
    action must have a body (package and Kubernetes actions are run by the step runner)."""
    body = action.properties.get("script_body")
    inline = action.properties.get("script_source", "Inline") == "Inline"
    if (
        action.action_type == SCRIPT_ACTION
        and inline
        and (not isinstance(body, str) or not body.strip())
    ):
        raise InvalidStep(f'step "{action.name}" has no script to run')
    raw_syntax = action.properties.get("syntax") or ScriptSyntax.BASH.value
    try:
        syntax = ScriptSyntax(str(raw_syntax).lower())
    except ValueError as error:
        known = ", ".join(item.value for item in ScriptSyntax)
        raise InvalidStep(
            f'step "{action.name}" uses script syntax {raw_syntax!r}; supported: {known}'
        ) from error
    return ActionScript(body if isinstance(body, str) else "", syntax)


def read_actions(steps: Sequence[Mapping[str, Any]]) -> list[ScriptActionSnapshot]:
    """The release's action snapshots, refused as a whole when one is malformed."""
    if not steps:
        raise InvalidStep("the release has no steps to deploy")
    actions = []
    for index, raw in enumerate(steps):
        try:
            actions.append(ScriptActionSnapshot.model_validate(raw))
        except ValidationError as error:
            raise InvalidStep(f"step {index + 1} of the release is malformed: {error}") from error
    return actions


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


def running_line(
    step_number: int, step_name: str, action_name: str, machines: Sequence[str]
) -> str:
    what = f'Running step {step_number} "{step_name}"'
    if action_name != step_name:
        what += f' action "{action_name}"'
    return f"{what} on {', '.join(machines)}" if machines else what


def finished_line(
    step_name: str, machine_name: str, exit_code: int | None, error: str | None
) -> str:
    if exit_code is None:
        return f"{step_name} on {machine_name} finished without an exit code: {error or 'unknown error'}"
    if exit_code == ExitCodes.TIMED_OUT:
        return f"{step_name} on {machine_name} timed out: it ran longer than its timeout_seconds"
    line = f"{step_name} on {machine_name} finished with exit code {exit_code}"
    return f"{line}: {error}" if error else line


@dataclass(frozen=True)
class RunFailure:
    machine_name: str
    exit_code: int | None
    error: str | None = None


def step_failed_reason(step_name: str, failures: Sequence[RunFailure]) -> str:
    """Which step failed on which machines, with their exit codes."""
    parts = [
        f"{failure.machine_name} ({_how(failure.exit_code, failure.error)})"
        for failure in sorted(failures, key=lambda item: item.machine_name.lower())
    ]
    return f'Step "{step_name}" failed on {", ".join(parts)}'


def _how(exit_code: int | None, error: str | None) -> str:
    if error is not None and error.startswith(ORCHESTRATOR_LOST):
        return ORCHESTRATOR_LOST
    if exit_code is None:
        return "no exit code"
    if exit_code == ExitCodes.TIMED_OUT:
        return "timed out"
    return f"exit code {exit_code}"


def unreachable_reason(error: str, seconds: float) -> str:
    return f"Could not find the deployment targets: {error} (gave up after {seconds:g} seconds)"


ORCHESTRATOR_LOST = "orchestrator-lost"
SUCCESS_LINE = "Deployment completed successfully"
