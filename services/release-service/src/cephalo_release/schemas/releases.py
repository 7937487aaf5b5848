from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from cephalo_release.schemas.common import ReadModel, WriteModel
from cephalo_release.schemas.projects import DeploymentStep

Version = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[0-9A-Za-z.+\-_]+$"
    ),
]


class ReleaseCreate(WriteModel):
    version: Version
    release_notes: str = Field("", max_length=100_000)


class Release(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    project_id: uuid.UUID
    version: str
    release_notes: str
    process_version: int
    steps: list[DeploymentStep]
    created_at: datetime


class DeploymentCreate(WriteModel):
    release_id: uuid.UUID
    environment_id: uuid.UUID


class Deployment(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    project_id: uuid.UUID
    release_id: uuid.UUID
    environment_id: uuid.UUID
    state: str
    task_id: uuid.UUID | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
