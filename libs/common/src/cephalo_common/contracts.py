"""Event and command contracts that cross service boundaries (versioned, `extra="forbid"`).

`type` strings are `cephalo.<context>.<entity>.<action>.v<N>`; a breaking change adds a
`V2` model beside `V1`. Producers build the subject with `subject_for`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cephalo_common.agent_protocol import ProcessOutput, ScriptSyntax
from cephalo_common.messaging import subjects
from cephalo_common.variables.scopes import VariableValue


class Contract(BaseModel):
    model_config = ConfigDict(extra="forbid")


SECRET_BEARING_TYPES: set[str] = set()
"""Types of the kinds whose data carries sensitive values in clear (see the outbox)."""


@dataclass(frozen=True)
class EventKind:
    """One event or command kind: where it is published and how it is named."""

    context: str
    entity: str
    action: str
    version: int = 1
    command: bool = False
    carries_secrets: bool = False

    def __post_init__(self) -> None:
        if self.carries_secrets:
            SECRET_BEARING_TYPES.add(self.type)

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
DEPLOYMENT_REQUESTED = EventKind("release", "deployment", "requested", carries_secrets=True)
TASK_STATE_CHANGED = EventKind("deploy", "task", "state-changed")
DEPLOYMENT_FINISHED = EventKind("deploy", "deployment", "finished")
STEP_DISPATCH = EventKind("agent", "step", "dispatch", command=True, carries_secrets=True)
STEP_LOG = EventKind("agent", "step", "log")
STEP_FINISHED = EventKind("agent", "step", "finished")
PACKAGE_PUSHED = EventKind("feed", "package", "pushed")
PACKAGE_DELETED = EventKind("feed", "package", "deleted")
AUDIT_RECORDED = EventKind("gateway", "audit", "recorded")


class ScriptActionSnapshot(Contract):
    """One action of a release's process, as the release captured it."""

    id: str
    name: str
    action_type: str
    target_roles: list[str] = Field(default_factory=list)
    properties: dict[str, Any] = Field(default_factory=dict)


class ConnectivityPolicyV1(Contract):
    """The project's rules for targets that cannot be reached (Octopus §4.3, §6)."""

    skip_machine_behavior: str = "None"  # "None" | "SkipUnavailableMachines"
    exclude_unhealthy_targets: bool = False
    allow_deployments_to_no_targets: bool = False


class DeploymentOptionsV1(Contract):
    """What the person deploying chose, and the settings of the project that shape the run."""

    specific_machine_ids: list[str] = Field(default_factory=list)
    excluded_machine_ids: list[str] = Field(default_factory=list)
    skip_action_ids: list[str] = Field(default_factory=list)
    use_guided_failure: bool = False
    connectivity: ConnectivityPolicyV1 = Field(default_factory=ConnectivityPolicyV1)
    priority: int = 0
    prompted_values: dict[str, str] = Field(default_factory=dict)


class DeploymentRequestedV1(Contract):
    """A deployment to run. `steps` are the action snapshots in order (see release-service
    `deployment_actions`); `variable_values` are the release's scoped candidate values
    (project and included library sets) that the orchestrator resolves per step and target.
    `variables` is a flat map of extra values that win over the snapshot (legacy/dev seam).
    Sensitive values travel in clear on the internal bus, as in `step.dispatch`: NATS runs
    on TLS and JetStream encrypts its store at rest in production (docs/operations.md).
    """

    deployment_id: str
    release_id: str
    release_version: str
    project_id: str
    project_name: str
    environment_id: str
    environment_name: str
    steps: list[ScriptActionSnapshot]
    variables: dict[str, str] = Field(default_factory=dict)
    space_id: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    tenant_id: str | None = None
    deployed_by: str | None = None
    options: DeploymentOptionsV1 = Field(default_factory=DeploymentOptionsV1)
    variable_values: list[VariableValue] = Field(default_factory=list)


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


class PackageAcquisitionV1(Contract):
    """One package a step needs: where the target fetches it and how it checks the bytes."""

    reference_name: str = ""
    package_id: str
    version: str
    feed_id: str = "builtin"
    url: str | None = None
    sha256: str | None = None
    size: int | None = None


class ArtifactV1(Contract):
    """A file a step published (`new_cephaloartifact`). Once agent-gateway has fetched its
    bytes they are in the `cephalo-task-artifacts` object store under `object_name`."""

    name: str
    size: int
    url: str | None = None
    object_name: str | None = None
    sha256: str | None = None


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
    action_type: str = "cephalo.script"
    action_properties: dict[str, Any] = Field(default_factory=dict)
    packages: list[PackageAcquisitionV1] = Field(default_factory=list)


class StepLogV1(Contract):
    ticket: str
    task_id: str
    step_run_id: str
    machine_id: str
    lines: list[ProcessOutput]


class StepFinishedV1(Contract):
    """`last_log_sequence` is the sequence of the step's last log line, so the orchestrator
    can finish the step only once its log has caught up (log and finish travel apart)."""

    ticket: str
    task_id: str
    step_run_id: str
    machine_id: str
    exit_code: int | None
    error: str | None = None
    output_variables: dict[str, str] = Field(default_factory=dict)
    sensitive_output_variables: list[str] = Field(default_factory=list)
    last_log_sequence: int | None = None
    artifacts: list[ArtifactV1] = Field(default_factory=list)


class PackagePushedV1(Contract):
    """A package version was stored (new, or replacing the bytes of an existing version)."""

    package_version_id: str
    package_id: str
    version: str
    extension: str
    size_bytes: int
    sha256: str
    published_at: datetime
    replaced: bool = False


class PackageDeletedV1(Contract):
    """A package version was deleted, by a person (`deleted`) or by retention."""

    package_version_id: str
    package_id: str
    version: str
    sha256: str
    reason: Literal["deleted", "retention"]
    forced: bool = False
