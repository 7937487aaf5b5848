from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from cephalo_release.schemas.common import (
    Description,
    ExpectedVersion,
    Name,
    ReadModel,
    Slug,
    WriteModel,
)


class EnvironmentCreate(WriteModel):
    name: Name
    slug: Slug | None = None
    description: Description = ""
    sort_order: int | None = Field(None, ge=0, le=1_000_000)
    use_guided_failure: bool = False
    allow_dynamic_infrastructure: bool = False


class EnvironmentUpdate(WriteModel):
    version: ExpectedVersion = None
    name: Name
    slug: Slug | None = None
    description: Description = ""
    use_guided_failure: bool = False
    allow_dynamic_infrastructure: bool = False


class EnvironmentOrder(WriteModel):
    """Every environment of the space, each once, in the new order."""

    environment_ids: list[uuid.UUID] = Field(max_length=10_000)


class Environment(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    slug: str
    description: str
    sort_order: int
    use_guided_failure: bool
    allow_dynamic_infrastructure: bool
    version: int
    created_at: datetime
    updated_at: datetime
