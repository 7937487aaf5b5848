"""The deployment process as the API reads and writes it (Octopus §5)."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints, model_validator

from cephalo_release.domain.process import canonical_step
from cephalo_release.schemas.common import ExpectedVersion, Name, ReadModel, WriteModel

Role = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
ShortText = Annotated[str, Field(max_length=10_000)]
PackageId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/:]{0,199}$")]
FeedId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,99}$")]
ReferenceName = Annotated[str, Field(max_length=200)]
Expression = Annotated[str, Field(min_length=1, max_length=10_000)]


class ScriptSyntax(StrEnum):
    BASH = "bash"
    SH = "sh"
    PYTHON = "python"
    POWERSHELL = "powershell"


class ActionType(StrEnum):
    SCRIPT = "cephalo.script"
    PACKAGE = "cephalo.package"
    MANUAL = "cephalo.manual"
    HEALTH_CHECK = "cephalo.health-check"
    KUBERNETES_YAML = "cephalo.kubernetes-yaml"


class StepCondition(StrEnum):
    SUCCESS = "Success"
    FAILURE = "Failure"
    ALWAYS = "Always"
    VARIABLE = "Variable"


class ActionCondition(StrEnum):
    SUCCESS = "Success"
    VARIABLE = "Variable"


class StartTrigger(StrEnum):
    AFTER_PREVIOUS = "StartAfterPrevious"
    WITH_PREVIOUS = "StartWithPrevious"


class AcquisitionLocation(StrEnum):
    SERVER = "Server"
    EXECUTION_TARGET = "ExecutionTarget"
    NOT_ACQUIRED = "NotAcquired"


class PackageReference(WriteModel):
    name: ReferenceName = Field("", description='"" names the action\'s primary package.')
    package_id: PackageId
    feed_id: FeedId = "builtin"
    acquisition_location: AcquisitionLocation = AcquisitionLocation.EXECUTION_TARGET
    properties: dict[Annotated[str, Field(max_length=200)], ShortText] = Field(
        default_factory=dict, max_length=50
    )


class ScriptProperties(WriteModel):
    script_source: Literal["Inline", "Package"] = "Inline"
    script_body: str | None = Field(None, max_length=1_000_000)
    syntax: ScriptSyntax = ScriptSyntax.BASH
    script_file_name: str | None = Field(None, min_length=1, max_length=500)
    script_package: ReferenceName | None = Field(
        None, description="The package reference holding the script (Package source)."
    )
    script_parameters: ShortText = ""

    @model_validator(mode="after")
    def _source_has_its_fields(self) -> ScriptProperties:
        if self.script_source == "Inline" and not (self.script_body or "").strip():
            raise ValueError("an inline script needs a script_body")
        if self.script_source == "Package" and (
            self.script_file_name is None or self.script_package is None
        ):
            raise ValueError("a script from a package needs script_package and script_file_name")
        return self


class PackageProperties(WriteModel):
    package_reference: ReferenceName = ""
    custom_installation_directory: str | None = Field(None, min_length=1, max_length=1000)
    skip_if_already_installed: bool = False
    substitute_in_files_targets: str | None = Field(
        None, max_length=10_000, description="Globs (one a line) whose `#{…}` are substituted."
    )
    structured_variables_targets: str | None = Field(
        None,
        max_length=10_000,
        description="Globs (one a line) of JSON, YAML, .properties and .env files whose keys "
        "are replaced by variables of the same name (`Logging:LogLevel:Default`).",
    )
    retention_keep: int | None = Field(
        None, ge=1, le=1000, description="Successful installations kept on each target."
    )


class ManualProperties(WriteModel):
    instructions: Annotated[str, Field(min_length=1, max_length=100_000)]
    responsible_team_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=50
    )
    block_deployments: bool = False


class HealthCheckProperties(WriteModel):
    check_type: Literal["FullHealthCheck", "ConnectionTest"] = "FullHealthCheck"
    error_handling: Literal["TreatExceptionsAsErrors", "TreatExceptionsAsWarnings"] = (
        "TreatExceptionsAsErrors"
    )
    include_new_targets: bool = False


class KubernetesYamlProperties(WriteModel):
    yaml: Annotated[str, Field(min_length=1, max_length=1_000_000)]
    namespace: str | None = Field(None, pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    resource_status_check: bool = True
    timeout_seconds: int = Field(180, ge=1, le=86_400)


class ActionBase(WriteModel):
    id: uuid.UUID | None = None
    name: Name | None = Field(None, description="Defaults to the step's name.")
    notes: ShortText = ""
    is_disabled: bool = False
    is_required: bool = Field(False, description="A required action can never be skipped.")
    condition: ActionCondition = ActionCondition.SUCCESS
    condition_expression: Expression | None = None
    environments: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    excluded_environments: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    channels: list[uuid.UUID] = Field(default_factory=list, max_length=500)
    packages: list[PackageReference] = Field(default_factory=list, max_length=20)


class ScriptAction(ActionBase):
    action_type: Literal[ActionType.SCRIPT]
    properties: ScriptProperties


class PackageAction(ActionBase):
    action_type: Literal[ActionType.PACKAGE]
    properties: PackageProperties = Field(default_factory=PackageProperties)


class ManualAction(ActionBase):
    action_type: Literal[ActionType.MANUAL]
    properties: ManualProperties


class HealthCheckAction(ActionBase):
    action_type: Literal[ActionType.HEALTH_CHECK]
    properties: HealthCheckProperties = Field(default_factory=HealthCheckProperties)


class KubernetesYamlAction(ActionBase):
    action_type: Literal[ActionType.KUBERNETES_YAML]
    properties: KubernetesYamlProperties


Action = Annotated[
    ScriptAction | PackageAction | ManualAction | HealthCheckAction | KubernetesYamlAction,
    Field(discriminator="action_type"),
]


class Step(WriteModel):
    """One step: one action, or a rolling parent (window_size) with child actions.

    The flat "run a script" shape (`name`, `target_roles`, `script_body`, `syntax`) is
    still accepted and read as a one-action step.
    """

    id: uuid.UUID | None = None
    name: Name
    target_roles: list[Role] = Field(default_factory=list, max_length=50)
    condition: StepCondition = StepCondition.SUCCESS
    condition_expression: Expression | None = None
    start_trigger: StartTrigger = StartTrigger.AFTER_PREVIOUS
    window_size: int | None = Field(None, ge=1, le=1000, description="Rolling: targets at once.")
    actions: list[Action] = Field(min_length=1, max_length=50)

    @model_validator(mode="before")
    @classmethod
    def _flat_script_step(cls, data: Any) -> Any:
        return canonical_step(data) if isinstance(data, dict) else data


class DeploymentProcessUpdate(WriteModel):
    version: ExpectedVersion = None
    steps: list[Step] = Field(max_length=100)


class DeploymentProcess(ReadModel):
    project_id: uuid.UUID
    version: int
    steps: list[Step]
