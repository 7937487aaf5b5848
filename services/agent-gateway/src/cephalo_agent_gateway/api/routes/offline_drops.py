from __future__ import annotations

import uuid

from fastapi import APIRouter

from cephalo_agent_gateway.api.rendering import render_machine
from cephalo_agent_gateway.deps import GatewayDep, ReposDep
from cephalo_agent_gateway.domain.offline_drop import register_offline_drop
from cephalo_agent_gateway.schemas.machines import Machine, OfflineDropRegister

router = APIRouter(prefix="/api/v1/spaces/{space_id}/machines", tags=["offline drops"])


@router.post("/offline-drop", status_code=201)
async def register(
    space_id: uuid.UUID, body: OfflineDropRegister, repos: ReposDep, gateway: GatewayDep
) -> Machine:
    """Register an offline drop target (404 unknown space, 409 duplicate name, 422 unknown
    environment)."""
    machine = await register_offline_drop(
        repos, gateway.release_service, space_id, body.name, body.environments, body.roles
    )
    gateway.machine_changed(machine.id)
    return render_machine(machine, gateway)
