from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from cephalo_release.schemas.common import (
    Description,
    ExpectedVersion,
    Name,
    ReadModel,
    Slug,
    WriteModel,
)


class VersionRule(WriteModel):
    """Which package versions a channel allows (checked at release creation)."""

    action_packages: list[Annotated[str, StringConstraints(min_length=1, max_length=400)]] = Field(
        default_factory=list,
        max_length=100,
        description='"<action name>" or "<action name>:<package reference>".',
    )
    version_range: str = Field("", max_length=500, description="NuGet or Maven range syntax.")
    tag: str = Field("", max_length=500, description="Regex on the pre-release tag and metadata.")


class ChannelCreate(WriteModel):
    name: Name
    slug: Slug | None = None
    description: Description = ""
    lifecycle: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        None, description="Id, slug or name; None uses the project's lifecycle."
    )
    is_default: bool = False
    rules: list[VersionRule] = Field(default_factory=list, max_length=50)


class ChannelUpdate(ChannelCreate):
    version: ExpectedVersion = None


class Channel(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    project_id: uuid.UUID
    name: str
    slug: str
    description: str
    lifecycle_id: uuid.UUID | None
    is_default: bool
    rules: list[VersionRule]
    version: int
    created_at: datetime
    updated_at: datetime


class RuleTrial(BaseModel):
    """A version tried against one version rule (`matches` needs both halves)."""

    version: str
    version_range: str
    tag: str
    is_version: bool
    satisfies_version_range: bool
    satisfies_tag: bool
    matches: bool
