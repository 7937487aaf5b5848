from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from cephalo_agent_gateway.api.rendering import render_worker
from cephalo_agent_gateway.deps import GatewayDep, ReposDep
from cephalo_agent_gateway.domain.machines import find_workers
from cephalo_agent_gateway.domain.worker_pools import (
    create_pool,
    delete_pool,
    get_pool,
    list_pools,
    select_worker,
)
from cephalo_agent_gateway.schemas.infrastructure import WorkerPool, WorkerPoolCreate
from cephalo_agent_gateway.schemas.machines import Worker

router = APIRouter(prefix="/api/v1/spaces/{space_id}/worker-pools", tags=["worker pools"])


@router.get("")
async def list_worker_pools(space_id: uuid.UUID, repos: ReposDep) -> list[WorkerPool]:
    """Every pool of the space; the default pool exists from the first call on."""
    return [WorkerPool.model_validate(pool) for pool in await list_pools(repos, space_id)]


@router.post("", status_code=201)
async def create(space_id: uuid.UUID, body: WorkerPoolCreate, repos: ReposDep) -> WorkerPool:
    pool = await create_pool(repos, space_id, **body.model_dump())
    return WorkerPool.model_validate(pool)


@router.get("/{pool_id}")
async def get(space_id: uuid.UUID, pool_id: uuid.UUID, repos: ReposDep) -> WorkerPool:
    return WorkerPool.model_validate(await get_pool(repos, space_id, pool_id))


@router.get("/{pool_id}/workers")
async def workers(
    space_id: uuid.UUID, pool_id: uuid.UUID, repos: ReposDep, gateway: GatewayDep
) -> list[Worker]:
    pool = await get_pool(repos, space_id, pool_id)
    found = await find_workers(repos, space_id, worker_pool_id=pool.id)
    return [render_worker(worker, gateway) for worker in found]


@router.get("/{pool_id}/next-worker")
async def next_worker(
    space_id: uuid.UUID, pool_id: uuid.UUID, repos: ReposDep, gateway: GatewayDep
) -> Worker:
    """The worker a step on this pool should run on: healthy, least busy (409 if none)."""
    return render_worker(await select_worker(repos, space_id, pool_id), gateway)


@router.delete("/{pool_id}", status_code=204)
async def delete(space_id: uuid.UUID, pool_id: uuid.UUID, repos: ReposDep) -> Response:
    """409 for the default pool or a pool that still has workers."""
    await delete_pool(repos, space_id, pool_id)
    return Response(status_code=204)
