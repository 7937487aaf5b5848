from __future__ import annotations

from fastapi import APIRouter

from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.environments import create_environment, get_environment
from cephalo_release.schemas.environments import Environment, EnvironmentCreate

router = APIRouter(prefix="/api/v1/spaces/{space}/environments", tags=["environments"])


@router.get("")
async def list_environments(space: SpaceDep, repos: ReposDep) -> list[Environment]:
    return [Environment.model_validate(e) for e in await repos.environments.list_in_space(space.id)]


@router.post("", status_code=201)
async def create(body: EnvironmentCreate, space: SpaceDep, repos: ReposDep) -> Environment:
    environment = await create_environment(repos, space, **body.model_dump())
    return Environment.model_validate(environment)


@router.get("/{environment}")
async def get(environment: str, space: SpaceDep, repos: ReposDep) -> Environment:
    """By id or by name: agents register with environment names."""
    return Environment.model_validate(await get_environment(repos, space, environment))
