from __future__ import annotations

import uuid
from datetime import datetime

from cephalo_release.schemas.common import Name, ReadModel, WriteModel


class EnvironmentCreate(WriteModel):
    name: Name
    description: str = ""
    sort_order: int | None = None
    use_guided_failure: bool = False
    allow_dynamic_infrastructure: bool = False


class Environment(ReadModel):
    id: uuid.UUID
    space_id: uuid.UUID
    name: str
    description: str
    sort_order: int
    use_guided_failure: bool
    allow_dynamic_infrastructure: bool
    created_at: datetime
