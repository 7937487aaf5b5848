from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict


class AuditEvent(BaseModel):
    """One state-changing request that went through the gateway, and its outcome."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    occurred_at: datetime
    method: str
    path: str
    status: int
    space_id: uuid.UUID | None
    actor: str
    request_id: str
    upstream: str
    category: str
    user_id: uuid.UUID | None
    ip_address: str | None
    user_agent: str | None
    detail: str | None
