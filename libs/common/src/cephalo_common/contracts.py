"""Event and command contracts that cross service boundaries (versioned, `extra="forbid"`).

`type` strings are `cephalo.<context>.<entity>.<action>.v<N>`; a breaking change adds a
`V2` model beside `V1`. Producers build the subject with `subject_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from cephalo_common.agent_protocol import ProcessOutput, ScriptSyntax
from cephalo_common.messaging import subjects


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class EventKind:
    """One event or command kind: where it is published and how it is named."""

    context: str
    entity: str
    action: str
    version: int = 1
    command: bool = False

    @property
    def type(self) -> str:
        return f"cephalo.{self.context}.{self.entity}.{self.action}.v{self.version}"

    def subject(self, space: str) -> str:
        if self.command:
            return subjects.cmd(space, self.context, f"{self.action}-{self.entity}")
        return subjects.evt(space, self.context, self.entity, self.action)

    @property
    def filter_subject(self) -> str:
        if self.command:
            return subjects.cmd_filter(self.context, f"{self.action}-{self.entity}")
        return subjects.evt_filter(self.context, self.entity, self.action)


RELEASE_CREATED = EventKind("release", "release", "created")
DEPLOYMENT_REQUESTED = EventKind("release", "deployment", "requested")
TASK_STATE_CHANGED = EventKind("deploy", "task", "state-changed")
DEPLOYMENT_FINISHED = EventKind("deploy", "deployment", "finished")
STEP_DISPATCH = EventKind("agent", "step", "dispatch", command=True)
STEP_LOG = EventKind("agent", "step", "log")
STEP_FINISHED = EventKind("agent", "step", "finished")
PACKAGE_PUSHED = EventKind("feed", "package", "pushed")
AUDIT_RECORDED = EventKind("gateway", "audit", "recorded")


class ScriptActionSnapshot(Contract):
    """One action of a release's process, as the release captured it."""

    id: str
    name: str
    action_type: str
    target_roles: list[str] = Field(default_factory=list)
    properties: dict[str, Any] = Field(default_factory=dict)


class DeploymentRequestedV1(Contract):
    deployment_id: str
    release_id: str
    release_version: str
    project_id: str
    project_name: str
    environment_id: str
    environment_name: str
    steps: list[ScriptActionSnapshot]
    variables: dict[str, str] = Field(default_factory=dict)


class ReleaseCreatedV1(Contract):
    release_id: str
    project_id: str
    version: str


class TaskStateChangedV1(Contract):
    task_id: str
    deployment_id: str | None = None
    state: str
    reason: str | None = None


class DeploymentFinishedV1(Contract):
    deployment_id: str
    task_id: str
    release_id: str
    project_id: str
    environment_id: str
    state: str
    error: str | None = None


class StepDispatchV1(Contract):
    """Run one script on one machine. `ticket` makes the run idempotent end to end."""

    ticket: str
    task_id: str
    step_run_id: str
    machine_id: str
    attempt: int = 1
    script_body: str
    syntax: ScriptSyntax = ScriptSyntax.BASH
    variables: dict[str, str] = Field(default_factory=dict)
    sensitive_variables: list[str] = Field(default_factory=list)
    timeout_seconds: int | None = None


class StepLogV1(Contract):
    ticket: str
    task_id: str
    step_run_id: str
    machine_id: str
    lines: list[ProcessOutput]


class StepFinishedV1(Contract):
    ticket: str
    task_id: str
    step_run_id: str
    machine_id: str
    exit_code: int | None
    error: str | None = None
    output_variables: dict[str, str] = Field(default_factory=dict)
