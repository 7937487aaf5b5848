from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cephalo_gateway.deps import ReposDep
from cephalo_gateway.domain.audit import list_events
from cephalo_gateway.schemas.audit import AuditEvent

router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"])


@router.get("")
async def list_audit_events(
    repos: ReposDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[AuditEvent]:
    """State-changing requests, newest first. The log cannot be changed through the API."""
    events = await list_events(repos, limit=limit, offset=offset)
    return [AuditEvent.model_validate(event) for event in events]
