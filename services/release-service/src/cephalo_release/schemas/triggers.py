from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from cephalo_release.schemas.common import Description, ExpectedVersion, Name, ReadModel, WriteModel

Reference = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class TriggerKind(StrEnum):
    PACKAGE_PUSH = "PackagePush"
    SCHEDULE = "Schedule"


class ScheduledAction(StrEnum):
    DEPLOY_LATEST_RELEASE = "DeployLatestRelease"
    CREATE_AND_DEPLOY_RELEASE = "CreateAndDeployRelease"


class TriggerCreate(WriteModel):
    name: Name
    description: Description = ""
    is_disabled: bool = False
    kind: TriggerKind
    channel: Reference | None = Field(
        None, description="Id, slug or name of the channel releases are created in; the default."
    )
    cron: str | None = Field(
        None,
        max_length=200,
        description='Schedule only: six fields, seconds first ("0 30 9 * * Mon-Fri").',
    )
    timezone: str = Field("UTC", max_length=100, description="IANA time zone of the cron.")
    action: ScheduledAction | None = Field(None, description="Schedule only.")
    source_environment: Reference | None = Field(
        None, description="DeployLatestRelease: the environment whose latest release is deployed."
    )
    destination_environment: Reference | None = Field(
        None, description="Schedule only: the environment deployed to."
    )


class TriggerUpdate(TriggerCreate):
    version: ExpectedVersion = None


class Trigger(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    project_id: uuid.UUID
    name: str
    description: str
    is_disabled: bool
    kind: TriggerKind
    channel_id: uuid.UUID | None
    cron: str | None
    timezone: str
    action: ScheduledAction | None
    source_environment_id: uuid.UUID | None
    destination_environment_id: uuid.UUID | None
    last_run_at: datetime | None
    next_run_at: datetime | None
    last_result: str
    version: int
    created_at: datetime
    updated_at: datetime
