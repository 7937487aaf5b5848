from __future__ import annotations

from fastapi import APIRouter, Request

from cephalo_release.api.conventions import PagingDep, page
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.spaces import create_space
from cephalo_release.schemas.common import Page
from cephalo_release.schemas.spaces import Space, SpaceCreate

router = APIRouter(prefix="/api/v1/spaces", tags=["spaces"])


@router.get("")
async def list_spaces(request: Request, paging: PagingDep, repos: ReposDep) -> Page[Space]:
    rows = await repos.spaces.page(
        skip=paging.skip, take=paging.take, partial_name=paging.partial_name
    )
    return page(request, rows, Space.model_validate)


@router.post("", status_code=201)
async def create(body: SpaceCreate, repos: ReposDep) -> Space:
    space = await create_space(repos, name=body.name, slug=body.slug, description=body.description)
    return Space.model_validate(space)


@router.get("/{space}")
async def get(space: SpaceDep) -> Space:
    return Space.model_validate(space)
