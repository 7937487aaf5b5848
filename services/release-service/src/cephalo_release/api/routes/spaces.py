from __future__ import annotations

from fastapi import APIRouter

from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.spaces import create_space
from cephalo_release.schemas.spaces import Space, SpaceCreate

router = APIRouter(prefix="/api/v1/spaces", tags=["spaces"])


@router.get("")
async def list_spaces(repos: ReposDep) -> list[Space]:
    return [Space.model_validate(space) for space in await repos.spaces.list_all()]


@router.post("", status_code=201)
async def create(body: SpaceCreate, repos: ReposDep) -> Space:
    space = await create_space(repos, name=body.name, slug=body.slug, description=body.description)
    return Space.model_validate(space)


@router.get("/{space}")
async def get(space: SpaceDep) -> Space:
    return Space.model_validate(space)
