"""Worker pools: where workers live (targets live in environments).

Every space has a default pool, created on first use; steps that run "on a worker" without
naming a pool use it. A pool that still has workers, or is the default, cannot be deleted.

A step on a pool runs on one of its workers: `select_worker` picks an enabled worker whose
last health check passed (Healthy or HasWarnings) with the fewest unfinished script runs, so
work spreads over the pool and a sick worker gets none.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from cephalo_agent_gateway.db.models import Machine, WorkerPool
from cephalo_agent_gateway.db.repositories import Repositories
from cephalo_common.errors import Conflict, Invalid, NotFound

DEFAULT_POOL_NAME = "Default Worker Pool"
SELECTABLE_HEALTH = ("Healthy", "HasWarnings")


async def default_pool(repos: Repositories, space_id: uuid.UUID) -> WorkerPool:
    found = await repos.worker_pools.find_default(space_id)
    if found is not None:
        return found
    return await repos.worker_pools.ensure_default(
        space_id, {"name": DEFAULT_POOL_NAME, "description": "Used when a step names no pool."}
    )


async def list_pools(repos: Repositories, space_id: uuid.UUID) -> Sequence[WorkerPool]:
    await default_pool(repos, space_id)
    return await repos.worker_pools.in_space(space_id)


async def get_pool(repos: Repositories, space_id: uuid.UUID, pool_id: uuid.UUID) -> WorkerPool:
    pool = await repos.worker_pools.find_in_space(space_id, pool_id)
    if pool is None:
        raise NotFound(f"worker pool {pool_id} was not found in this space")
    return pool


async def create_pool(
    repos: Repositories,
    space_id: uuid.UUID,
    *,
    name: str,
    description: str = "",
    is_default: bool = False,
) -> WorkerPool:
    if await repos.worker_pools.find_by_name(space_id, name) is not None:
        raise Conflict(f"a worker pool named {name!r} already exists in this space")
    current = await default_pool(repos, space_id)
    pool = await repos.worker_pools.insert(
        WorkerPool(space_id=space_id, name=name, description=description, is_default=False)
    )
    if is_default:
        current.is_default = False
        await repos.worker_pools.save(current)
        pool.is_default = True
        await repos.worker_pools.save(pool)
    return pool


async def delete_pool(repos: Repositories, space_id: uuid.UUID, pool_id: uuid.UUID) -> None:
    pool = await get_pool(repos, space_id, pool_id)
    if pool.is_default:
        raise Conflict("the default worker pool cannot be deleted; make another the default")
    workers = await repos.machines.count_in_pool(pool.id)
    if workers:
        raise Conflict(f"worker pool {pool.name!r} still has {workers} worker(s)")
    await repos.worker_pools.remove(pool)


async def resolve_pools(
    repos: Repositories, space_id: uuid.UUID, refs: Sequence[str]
) -> list[uuid.UUID]:
    """Pool names or ids to ids, in order, without duplicates; all unknown ones at once."""
    await default_pool(repos, space_id)
    resolved: list[uuid.UUID] = []
    unknown: list[str] = []
    for ref in refs:
        pool = await _find(repos, space_id, ref.strip())
        if pool is None:
            unknown.append(ref)
        elif pool.id not in resolved:
            resolved.append(pool.id)
    if unknown:
        names = ", ".join(repr(ref) for ref in unknown)
        raise Invalid(
            f"unknown worker pool(s) in this space: {names}",
            errors=[
                {"field": "body.worker_pools", "message": f"unknown worker pool {ref!r}"}
                for ref in unknown
            ],
        )
    return resolved


async def _find(repos: Repositories, space_id: uuid.UUID, ref: str) -> WorkerPool | None:
    try:
        pool_id = uuid.UUID(ref)
    except ValueError:
        return await repos.worker_pools.find_by_name(space_id, ref)
    return await repos.worker_pools.find_in_space(space_id, pool_id)


async def select_worker(repos: Repositories, space_id: uuid.UUID, pool_id: uuid.UUID) -> Machine:
    """The least busy healthy worker of the pool; 409 when it has none."""
    pool = await get_pool(repos, space_id, pool_id)
    candidates = await repos.machines.least_busy_workers(
        space_id, pool.id, statuses=SELECTABLE_HEALTH
    )
    if not candidates:
        raise Conflict(f"worker pool {pool.name!r} has no enabled worker whose health check passed")
    worker, _ = candidates[0]
    return worker
