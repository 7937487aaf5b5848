from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from cephalo_common.errors import Forbidden
from cephalo_gateway.db.repositories import AuditFilter
from cephalo_gateway.deps import PrincipalDep, ReposDep
from cephalo_gateway.domain.audit import ALL_CATEGORIES, list_events
from cephalo_gateway.domain.permissions import ObjectScope, Permission, is_allowed
from cephalo_gateway.schemas.audit import AuditEvent

router = APIRouter(prefix="/api/v1/audit-events", tags=["audit"])


@router.get("")
async def list_audit_events(
    repos: ReposDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
    user_id: uuid.UUID | None = None,
    user: Annotated[str | None, Query(max_length=200, description="Username (actor).")] = None,
    category: Annotated[str | None, Query(max_length=40)] = None,
    space_id: uuid.UUID | None = None,
    occurred_from: Annotated[AwareDatetime | None, Query(alias="from")] = None,
    occurred_to: Annotated[AwareDatetime | None, Query(alias="to")] = None,
) -> list[AuditEvent]:
    """State-changing requests and refused credentials, newest first; `from` inclusive,
    `to` exclusive. Administrators see everything; others need EventView in the `space_id`
    they ask for. The log cannot be changed or deleted through the API."""
    may_read = principal.is_administrator or (
        space_id is not None
        and is_allowed(principal.grants, Permission.EVENT_VIEW, ObjectScope(space_id=space_id))
    )
    if not may_read:
        raise Forbidden("reading the audit log needs EventView in the space given by space_id")
    events = await list_events(
        repos,
        limit=limit,
        offset=offset,
        filter=AuditFilter(
            user_id=user_id,
            actor=user,
            category=category,
            space_id=space_id,
            occurred_from=occurred_from,
            occurred_to=occurred_to,
        ),
    )
    return [AuditEvent.model_validate(event) for event in events]


@router.get("/categories")
async def categories(principal: PrincipalDep) -> list[str]:
    """Every category the gateway writes."""
    return list(ALL_CATEGORIES)
