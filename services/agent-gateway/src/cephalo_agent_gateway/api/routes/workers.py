"""Workers: agents in worker pools (they run steps that do not run on a target)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Query, Response

from cephalo_agent_gateway.api.rendering import health_of, registered_extras, render_worker
from cephalo_agent_gateway.db.repositories import WORKER
from cephalo_agent_gateway.deps import GatewayDep, ReposDep
from cephalo_agent_gateway.domain.machines import (
    MachineChanges,
    Registration,
    change_machine,
    delete_machine,
    find_workers,
    get_machine,
    register_machine,
)
from cephalo_agent_gateway.schemas.machines import (
    HealthCheckResult,
    MachineHealth,
    MachineUpdate,
    Worker,
    WorkerRegister,
    WorkerRegistered,
)
from cephalo_common.errors import NotFound

router = APIRouter(prefix="/api/v1/spaces/{space_id}/workers", tags=["workers"])


@router.post("/register", status_code=201, response_model=WorkerRegistered)
async def register(
    space_id: uuid.UUID,
    body: WorkerRegister,
    response: Response,
    repos: ReposDep,
    gateway: GatewayDep,
) -> WorkerRegistered:
    """201 for a new worker; 200 with the same worker when the same agent registers again."""
    registration = Registration(**body.model_dump(), kind=WORKER)
    registered = await register_machine(
        repos, gateway.release_service, space_id, registration, outbound=gateway.outbound
    )
    worker = registered.machine
    gateway.listener.trust(worker.certificate_pem, worker.thumbprint)
    gateway.machine_changed(worker.id)
    if not registered.created:
        response.status_code = 200
    return WorkerRegistered(
        **render_worker(worker, gateway).model_dump(), **registered_extras(worker, gateway)
    )


@router.get("")
async def list_workers(
    space_id: uuid.UUID,
    repos: ReposDep,
    gateway: GatewayDep,
    worker_pool_id: uuid.UUID | None = None,
) -> list[Worker]:
    workers = await find_workers(repos, space_id, worker_pool_id=worker_pool_id)
    return [render_worker(worker, gateway) for worker in workers]


@router.get("/{worker_id}")
async def get(
    space_id: uuid.UUID, worker_id: uuid.UUID, repos: ReposDep, gateway: GatewayDep
) -> Worker:
    return render_worker(await get_machine(repos, space_id, worker_id, kind=WORKER), gateway)


@router.patch("/{worker_id}")
async def change(
    space_id: uuid.UUID,
    worker_id: uuid.UUID,
    body: MachineUpdate,
    repos: ReposDep,
    gateway: GatewayDep,
    background: BackgroundTasks,
) -> Worker:
    changes = MachineChanges(**body.model_dump())
    worker = await change_machine(repos, space_id, worker_id, changes, kind=WORKER)
    gateway.machine_changed(worker.id)
    if worker.is_disabled:
        background.add_task(gateway.connections.disconnect, worker.id, "machine is disabled")
    return render_worker(worker, gateway)


@router.delete("/{worker_id}", status_code=204)
async def delete(
    space_id: uuid.UUID,
    worker_id: uuid.UUID,
    repos: ReposDep,
    gateway: GatewayDep,
    background: BackgroundTasks,
) -> Response:
    worker = await delete_machine(repos, space_id, worker_id, kind=WORKER)
    background.add_task(gateway.machine_deleted, worker.id)
    return Response(status_code=204)


@router.get("/{worker_id}/health")
async def health(
    space_id: uuid.UUID,
    worker_id: uuid.UUID,
    repos: ReposDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> MachineHealth:
    return await health_of(repos, await get_machine(repos, space_id, worker_id, kind=WORKER), limit)


@router.post("/{worker_id}/health-checks")
async def check_health(
    space_id: uuid.UUID, worker_id: uuid.UUID, gateway: GatewayDep
) -> HealthCheckResult:
    result = await gateway.health.check_now(worker_id, space_id=space_id, kind=WORKER)
    if result is None:
        raise NotFound(f"worker {worker_id} was not found in this space")
    return HealthCheckResult.model_validate(result)
