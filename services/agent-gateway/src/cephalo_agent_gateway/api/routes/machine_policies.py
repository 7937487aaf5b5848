from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from cephalo_agent_gateway.deps import ReposDep
from cephalo_agent_gateway.domain.health_schedule import HealthCheckSchedule
from cephalo_agent_gateway.domain.machine_policies import (
    HealthCheckType,
    PolicyFields,
    create_policy,
    delete_policy,
    get_policy,
    list_policies,
    update_policy,
)
from cephalo_agent_gateway.schemas.infrastructure import MachinePolicy, MachinePolicyWrite

router = APIRouter(prefix="/api/v1/spaces/{space_id}/machine-policies", tags=["machine policies"])


def _fields(body: MachinePolicyWrite) -> PolicyFields:
    values = body.model_dump()
    values["health_check_type"] = HealthCheckType(body.health_check_type)
    values["health_check_schedule"] = HealthCheckSchedule(body.health_check_schedule)
    return PolicyFields(**values)


@router.get("")
async def list_machine_policies(space_id: uuid.UUID, repos: ReposDep) -> list[MachinePolicy]:
    """Every policy of the space; the default policy exists from the first call on."""
    return [MachinePolicy.model_validate(p) for p in await list_policies(repos, space_id)]


@router.post("", status_code=201)
async def create(space_id: uuid.UUID, body: MachinePolicyWrite, repos: ReposDep) -> MachinePolicy:
    return MachinePolicy.model_validate(await create_policy(repos, space_id, _fields(body)))


@router.get("/{policy_id}")
async def get(space_id: uuid.UUID, policy_id: uuid.UUID, repos: ReposDep) -> MachinePolicy:
    return MachinePolicy.model_validate(await get_policy(repos, space_id, policy_id))


@router.put("/{policy_id}")
async def update(
    space_id: uuid.UUID, policy_id: uuid.UUID, body: MachinePolicyWrite, repos: ReposDep
) -> MachinePolicy:
    policy = await update_policy(repos, space_id, policy_id, _fields(body))
    return MachinePolicy.model_validate(policy)


@router.delete("/{policy_id}", status_code=204)
async def delete(space_id: uuid.UUID, policy_id: uuid.UUID, repos: ReposDep) -> Response:
    """409 for the default policy or one machines still use."""
    await delete_policy(repos, space_id, policy_id)
    return Response(status_code=204)
