from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
    changes: dict[str, Any] | None = Field(
        None,
        description='What the request body set: `{"fields": {...}}` for a JSON object, '
        'else `{"summary": "..."}`; every sensitive value is "changed".',
    )
