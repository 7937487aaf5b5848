"""Script runs (internal: the orchestrator's view of what runs where)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path

from cephalo_agent_gateway.deps import GatewayDep, ReposDep
from cephalo_agent_gateway.domain.script_runs import get_run, request_cancel
from cephalo_agent_gateway.schemas.infrastructure import ScriptRun

router = APIRouter(prefix="/api/v1/spaces/{space_id}/script-runs", tags=["script runs"])
Ticket = Annotated[str, Path(min_length=1, max_length=200)]


@router.get("/{ticket}")
async def get(space_id: uuid.UUID, ticket: Ticket, repos: ReposDep) -> ScriptRun:
    return ScriptRun.model_validate(await get_run(repos, space_id, ticket))


@router.post("/{ticket}/cancel", status_code=202)
async def cancel(
    space_id: uuid.UUID, ticket: Ticket, repos: ReposDep, gateway: GatewayDep
) -> ScriptRun:
    """Ask for the run to be cancelled: its process tree is killed, it finishes Canceled (-1).
    409 once it has finished."""
    run = await request_cancel(repos, space_id, ticket)
    await repos.session.flush()
    gateway.supervisor.cancel(ticket)
    return ScriptRun.model_validate(run)
