from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints, model_validator

from cephalo_release.schemas.common import (
    Description,
    ExpectedVersion,
    Name,
    ReadModel,
    Slug,
    WriteModel,
)

Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
"""An id, a slug or a name."""


class GuidedFailureMode(StrEnum):
    ENVIRONMENT_DEFAULT = "EnvironmentDefault"
    OFF = "Off"
    ON = "On"


class ConnectivityPolicy(WriteModel):
    skip_unavailable_targets: bool = False
    exclude_unhealthy_targets: bool = False
    allow_deployments_to_no_targets: bool = False


DEFAULT_VERSION_TEMPLATE = (
    "#{Cephalo.Version.LastMajor}.#{Cephalo.Version.LastMinor}.#{Cephalo.Version.NextPatch}"
)


class DonorPackage(WriteModel):
    action_name: Name
    package_reference: str = Field("", max_length=200)


class VersioningStrategy(WriteModel):
    """Release numbers from a template, or from the version of one package (donor)."""

    template: str | None = Field(DEFAULT_VERSION_TEMPLATE, min_length=1, max_length=500)
    donor_package: DonorPackage | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> VersioningStrategy:
        if (self.template is None) == (self.donor_package is None):
            raise ValueError("set either a template or a donor package")
        return self


class ProjectGroupCreate(WriteModel):
    name: Name
    slug: Slug | None = None
    description: Description = ""


class ProjectGroupUpdate(ProjectGroupCreate):
    version: ExpectedVersion = None


class ProjectGroup(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    slug: str
    description: str
    is_default: bool
    version: int
    created_at: datetime
    updated_at: datetime


class ProjectSettings(WriteModel):
    description: Description = ""
    project_group: Reference | None = Field(None, description="Id, slug or name; default group.")
    lifecycle: Reference | None = Field(None, description="Id, slug or name; default lifecycle.")
    default_guided_failure_mode: GuidedFailureMode = GuidedFailureMode.ENVIRONMENT_DEFAULT
    connectivity_policy: ConnectivityPolicy = Field(default_factory=ConnectivityPolicy)
    versioning_strategy: VersioningStrategy = Field(default_factory=VersioningStrategy)
    is_disabled: bool = False


class ProjectCreate(ProjectSettings):
    name: Name
    slug: Slug | None = None


class ProjectUpdate(ProjectCreate):
    version: ExpectedVersion = None


class Project(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    slug: str
    description: str
    project_group_id: uuid.UUID
    lifecycle_id: uuid.UUID
    default_guided_failure_mode: GuidedFailureMode
    connectivity_policy: ConnectivityPolicy
    versioning_strategy: VersioningStrategy
    is_disabled: bool
    version: int
    created_at: datetime
    updated_at: datetime
