from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class PackageVersion(BaseModel):
    """One pushed version of a package (where its bytes are stored stays internal)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    space_id: uuid.UUID
    package_id: str
    version: str
    size_bytes: int
    sha256: str
    published_at: datetime
    created_at: datetime
