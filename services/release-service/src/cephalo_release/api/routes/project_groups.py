from __future__ import annotations

from fastapi import APIRouter, Request, Response

from cephalo_release.api.conventions import IfMatchDep, PagingDep, etag, expected_version, page
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.project_groups import (
    create_project_group,
    get_project_group,
    update_project_group,
)
from cephalo_release.schemas.common import Page
from cephalo_release.schemas.projects import ProjectGroup, ProjectGroupCreate, ProjectGroupUpdate

router = APIRouter(prefix="/api/v1/spaces/{space}/project-groups", tags=["project groups"])


@router.get("")
async def list_project_groups(
    request: Request, paging: PagingDep, space: SpaceDep, repos: ReposDep
) -> Page[ProjectGroup]:
    rows = await repos.project_groups.page_in_space(
        space.id, skip=paging.skip, take=paging.take, partial_name=paging.partial_name
    )
    return page(request, rows, ProjectGroup.model_validate)


@router.post("", status_code=201)
async def create(
    body: ProjectGroupCreate, response: Response, space: SpaceDep, repos: ReposDep
) -> ProjectGroup:
    group = await create_project_group(repos, space, **body.model_dump())
    etag(response, group.version)
    return ProjectGroup.model_validate(group)


@router.get("/{group}")
async def get(group: str, response: Response, space: SpaceDep, repos: ReposDep) -> ProjectGroup:
    found = await get_project_group(repos, space, group)
    etag(response, found.version)
    return ProjectGroup.model_validate(found)


@router.put("/{group}")
async def put(
    group: str,
    body: ProjectGroupUpdate,
    if_match: IfMatchDep,
    response: Response,
    space: SpaceDep,
    repos: ReposDep,
) -> ProjectGroup:
    found = await get_project_group(repos, space, group)
    updated = await update_project_group(
        repos,
        space,
        found,
        expected_version=expected_version(body.version, if_match),
        **body.model_dump(exclude={"version"}),
    )
    etag(response, updated.version)
    return ProjectGroup.model_validate(updated)
