from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, Field, StringConstraints, model_validator

from cephalo_release.schemas.common import ReadModel, WriteModel
from cephalo_release.schemas.process import Step

Version = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[0-9A-Za-z.+\-_]+$"
    ),
]
Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class SelectedPackage(WriteModel):
    action_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    package_reference: str = Field("", max_length=200)
    version: Version


class ReleaseCreate(WriteModel):
    version: Version | None = Field(
        None, description="Explicit release number; None renders the project's template."
    )
    channel: Reference | None = Field(None, description="Id, slug or name; the default channel.")
    release_notes: str = Field("", max_length=100_000, description="Markdown.")
    packages: list[SelectedPackage] = Field(default_factory=list, max_length=200)


class Release(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    project_id: uuid.UUID
    channel_id: uuid.UUID
    version: str
    release_notes: str
    process_version: int
    steps: list[Step]
    selected_packages: list[SelectedPackage]
    created_at: datetime


class DeploymentOptions(WriteModel):
    specific_machine_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    excluded_machine_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    skip_actions: list[Reference] = Field(
        default_factory=list, max_length=200, description="Action ids or names."
    )
    use_guided_failure: bool | None = Field(
        None, description="Override; None follows the project, then the environment."
    )
    queue_time: AwareDatetime | None = Field(None, description="Start no earlier than this.")
    queue_time_expiry: AwareDatetime | None = Field(
        None, description="Do not start after this (scheduled deployments)."
    )
    comments: str = Field("", max_length=10_000)
    prompted_variables: dict[
        Annotated[str, StringConstraints(max_length=1000)],
        Annotated[str, StringConstraints(max_length=100_000)],
    ] = Field(
        default_factory=dict,
        max_length=200,
        description="Values for the release's prompted variables, by name (never returned).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentOptions:
        if set(self.specific_machine_ids) & set(self.excluded_machine_ids):
            raise ValueError("a machine cannot be both specific and excluded")
        if self.queue_time_expiry is not None and self.queue_time is None:
            raise ValueError("queue_time_expiry needs a queue_time")
        if self.queue_time and self.queue_time_expiry and self.queue_time_expiry <= self.queue_time:
            raise ValueError("queue_time_expiry must be after queue_time")
        return self


class DeploymentCreate(DeploymentOptions):
    release_id: uuid.UUID
    environment_id: uuid.UUID


class RollbackCreate(DeploymentOptions):
    project: Reference
    environment: Reference


class RedeployCreate(WriteModel):
    queue_time: AwareDatetime | None = None
    queue_time_expiry: AwareDatetime | None = None
    comments: str = Field("", max_length=10_000)


class Deployment(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    project_id: uuid.UUID
    release_id: uuid.UUID
    environment_id: uuid.UUID
    channel_id: uuid.UUID | None
    state: str
    trigger: str
    deployed_by: str | None
    comments: str
    specific_machine_ids: list[uuid.UUID]
    excluded_machine_ids: list[uuid.UUID]
    skip_actions: list[str]
    guided_failure_override: bool | None
    use_guided_failure: bool
    queue_time: datetime | None
    queue_time_expiry: datetime | None
    requested_at: datetime | None
    redeploy_of_id: uuid.UUID | None
    task_id: uuid.UUID | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None


class PackageReferences(ReadModel):
    package_id: str
    versions: list[str]
