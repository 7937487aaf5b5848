from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Response

from cephalo_agent_gateway.db import models
from cephalo_agent_gateway.deps import GatewayDep, ReposDep
from cephalo_agent_gateway.domain.machines import (
    Registration,
    delete_machine,
    find_machines,
    get_machine,
    register_machine,
)
from cephalo_agent_gateway.runtime import Gateway
from cephalo_agent_gateway.schemas.common import Role
from cephalo_agent_gateway.schemas.machines import Machine, MachineRegister, MachineRegistered

router = APIRouter(prefix="/api/v1/spaces/{space_id}/machines", tags=["machines"])


def render(machine: models.Machine, gateway: Gateway) -> Machine:
    fields = {name: getattr(machine, name) for name in Machine.model_fields if name != "connected"}
    return Machine(**fields, connected=gateway.connections.is_connected(machine.id))


@router.post("/register", status_code=201, response_model=MachineRegistered)
async def register(
    space_id: uuid.UUID,
    body: MachineRegister,
    response: Response,
    repos: ReposDep,
    gateway: GatewayDep,
) -> MachineRegistered:
    """201 for a new machine; 200 with the same machine when the same agent registers again."""
    registered = await register_machine(
        repos, gateway.release_service, space_id, Registration(**body.model_dump())
    )
    gateway.listener.trust(registered.machine.certificate_pem)
    if not registered.created:
        response.status_code = 200
    return MachineRegistered(
        **render(registered.machine, gateway).model_dump(),
        server_certificate_pem=gateway.identity.certificate_pem,
        server_thumbprint=gateway.identity.thumbprint,
        polling_endpoint=gateway.settings.polling_endpoint,
    )


@router.get("")
async def list_machines(
    space_id: uuid.UUID,
    repos: ReposDep,
    gateway: GatewayDep,
    environment_id: uuid.UUID | None = None,
    role: Annotated[list[Role], Query(max_length=100)] = [],  # noqa: B006 - FastAPI copies it
) -> list[Machine]:
    """Machines in the environment with ANY of the roles (all of the environment if no role)."""
    machines = await find_machines(repos, space_id, environment_id=environment_id, roles=role)
    return [render(machine, gateway) for machine in machines]


@router.get("/{machine_id}")
async def get(
    space_id: uuid.UUID, machine_id: uuid.UUID, repos: ReposDep, gateway: GatewayDep
) -> Machine:
    return render(await get_machine(repos, space_id, machine_id), gateway)


@router.delete("/{machine_id}", status_code=204)
async def delete(
    space_id: uuid.UUID,
    machine_id: uuid.UUID,
    repos: ReposDep,
    gateway: GatewayDep,
    background: BackgroundTasks,
) -> Response:
    """Deregister; its live connection is closed once the deletion is committed."""
    machine = await delete_machine(repos, space_id, machine_id)
    background.add_task(gateway.connections.disconnect, machine.id, "machine deregistered")
    return Response(status_code=204)
