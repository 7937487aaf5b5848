from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from cephalo_release.schemas.common import Description, Name, ReadModel, WriteModel


class SpaceCreate(WriteModel):
    name: Name
    slug: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    description: Description = ""


class Space(ReadModel):
    id: uuid.UUID
    name: str
    slug: str
    description: str
    is_default: bool
    created_at: datetime
