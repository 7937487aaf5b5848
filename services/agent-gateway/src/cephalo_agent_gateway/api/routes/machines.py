from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response

from cephalo_agent_gateway.api.rendering import health_of, registered_extras, render_machine
from cephalo_agent_gateway.db.repositories import TARGET
from cephalo_agent_gateway.deps import GatewayDep, ReposDep
from cephalo_agent_gateway.domain.machines import (
    Approval,
    Introduction,
    MachineChanges,
    Registration,
    approve_pending,
    change_machine,
    delete_machine,
    find_machines,
    get_machine,
    get_pending,
    list_pending,
    record_pending,
    register_machine,
    reject_pending,
)
from cephalo_agent_gateway.schemas.common import Role
from cephalo_agent_gateway.schemas.machines import (
    HealthCheckResult,
    Machine,
    MachineHealth,
    MachineRegister,
    MachineRegistered,
    MachineUpdate,
    PendingApprove,
    PendingIntroduce,
    PendingRegistration,
)
from cephalo_common.errors import NotFound
from cephalo_common.ids import utc_now

router = APIRouter(prefix="/api/v1/spaces/{space_id}/machines", tags=["machines"])


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
        repos,
        gateway.release_service,
        space_id,
        Registration(**body.model_dump()),
        outbound=gateway.outbound,
    )
    machine = registered.machine
    gateway.listener.trust(machine.certificate_pem, machine.thumbprint)
    gateway.machine_changed(machine.id)
    if not registered.created:
        response.status_code = 200
    return MachineRegistered(
        **render_machine(machine, gateway).model_dump(), **registered_extras(machine, gateway)
    )


@router.get("")
async def list_machines(
    space_id: uuid.UUID,
    repos: ReposDep,
    gateway: GatewayDep,
    environment_id: uuid.UUID | None = None,
    role: Annotated[list[Role], Query(max_length=100)] = [],  # noqa: B006 - FastAPI copies it
) -> list[Machine]:
    """Targets in the environment with ANY of the roles (all of the environment if no role)."""
    machines = await find_machines(repos, space_id, environment_id=environment_id, roles=role)
    return [render_machine(machine, gateway) for machine in machines]


@router.get("/pending")
async def pending_registrations(space_id: uuid.UUID, repos: ReposDep) -> list[PendingRegistration]:
    """Agents the gateway refused that asked to be approved; compare their thumbprints."""
    return [PendingRegistration.model_validate(p) for p in await list_pending(repos, space_id)]


@router.post("/pending", status_code=202, response_model=PendingRegistration | None)
async def introduce(
    space_id: uuid.UUID,
    body: PendingIntroduce,
    request: Request,
    response: Response,
    repos: ReposDep,
    gateway: GatewayDep,
) -> PendingRegistration | None:
    """A refused agent asks to be approved: 202 with the pending registration, or 200 and no
    body when its certificate is already trusted."""
    pending = await record_pending(
        repos,
        space_id,
        Introduction(
            **body.model_dump(), remote_address=request.client.host if request.client else None
        ),
        now=utc_now(),
        keep=gateway.settings.max_pending_registrations_per_space,
        outbound=gateway.outbound,
    )
    if pending is None:
        response.status_code = 200
        return None
    return PendingRegistration.model_validate(pending)


@router.get("/pending/{pending_id}")
async def pending_registration(
    space_id: uuid.UUID, pending_id: uuid.UUID, repos: ReposDep
) -> PendingRegistration:
    return PendingRegistration.model_validate(await get_pending(repos, space_id, pending_id))


@router.post("/pending/{pending_id}/approve", status_code=201)
async def approve(
    space_id: uuid.UUID,
    pending_id: uuid.UUID,
    body: PendingApprove,
    repos: ReposDep,
    gateway: GatewayDep,
) -> Machine:
    """The pending registration becomes a machine (or a worker): its agent is trusted now."""
    approval = Approval(**body.model_dump())
    machine = await approve_pending(
        repos, gateway.release_service, space_id, pending_id, approval, outbound=gateway.outbound
    )
    gateway.listener.trust(machine.certificate_pem, machine.thumbprint)
    gateway.machine_changed(machine.id)
    return render_machine(machine, gateway)


@router.delete("/pending/{pending_id}", status_code=204)
async def reject(space_id: uuid.UUID, pending_id: uuid.UUID, repos: ReposDep) -> Response:
    await reject_pending(repos, space_id, pending_id)
    return Response(status_code=204)


@router.get("/{machine_id}")
async def get(
    space_id: uuid.UUID, machine_id: uuid.UUID, repos: ReposDep, gateway: GatewayDep
) -> Machine:
    return render_machine(await get_machine(repos, space_id, machine_id), gateway)


@router.patch("/{machine_id}")
async def change(
    space_id: uuid.UUID,
    machine_id: uuid.UUID,
    body: MachineUpdate,
    repos: ReposDep,
    gateway: GatewayDep,
    background: BackgroundTasks,
) -> Machine:
    """Disable or enable, move to another machine policy, change roles."""
    changes = MachineChanges(**body.model_dump())
    machine = await change_machine(repos, space_id, machine_id, changes)
    gateway.machine_changed(machine.id)
    if machine.is_disabled:
        background.add_task(gateway.connections.disconnect, machine.id, "machine is disabled")
    return render_machine(machine, gateway)


@router.delete("/{machine_id}", status_code=204)
async def delete(
    space_id: uuid.UUID,
    machine_id: uuid.UUID,
    repos: ReposDep,
    gateway: GatewayDep,
    background: BackgroundTasks,
) -> Response:
    """Deregister; its live connection is closed once the deletion is committed (here at
    once, on other replicas when `target.deleted` reaches them)."""
    machine = await delete_machine(repos, space_id, machine_id)
    background.add_task(gateway.machine_deleted, machine.id)
    return Response(status_code=204)


@router.get("/{machine_id}/health")
async def health(
    space_id: uuid.UUID,
    machine_id: uuid.UUID,
    repos: ReposDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> MachineHealth:
    """The current health and the most recent checks, newest first."""
    machine = await get_machine(repos, space_id, machine_id)
    return await health_of(repos, machine, limit)


@router.post("/{machine_id}/health-checks")
async def check_health(
    space_id: uuid.UUID, machine_id: uuid.UUID, gateway: GatewayDep
) -> HealthCheckResult:
    """Check the machine now (bounded by its policy's timeout) and return the result."""
    result = await gateway.health.check_now(machine_id, space_id=space_id, kind=TARGET)
    if result is None:
        raise NotFound(f"machine {machine_id} was not found in this space")
    return HealthCheckResult.model_validate(result)
