from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from cephalo_release.api.conventions import IfMatchDep, PagingDep, etag, expected_version, page
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.project_groups import get_project_group
from cephalo_release.domain.projects import (
    create_project,
    get_process,
    get_project,
    process_steps,
    replace_process,
    update_project,
)
from cephalo_release.schemas.common import Page
from cephalo_release.schemas.process import DeploymentProcess, DeploymentProcessUpdate
from cephalo_release.schemas.projects import Project, ProjectCreate, ProjectUpdate

router = APIRouter(prefix="/api/v1/spaces/{space}/projects", tags=["projects"])


@router.get("")
async def list_projects(
    request: Request,
    paging: PagingDep,
    space: SpaceDep,
    repos: ReposDep,
    project_group: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[Project]:
    where = []
    if project_group is not None:
        group = await get_project_group(repos, space, project_group)
        where.append(repos.projects.model.project_group_id == group.id)
    rows = await repos.projects.page_in_space(
        space.id,
        skip=paging.skip,
        take=paging.take,
        partial_name=paging.partial_name,
        where=where,
    )
    return page(request, rows, Project.model_validate)


@router.post("", status_code=201)
async def create(
    body: ProjectCreate, response: Response, space: SpaceDep, repos: ReposDep
) -> Project:
    settings = body.model_dump(mode="json", exclude={"name", "slug"})
    project = await create_project(repos, space, name=body.name, slug=body.slug, settings=settings)
    etag(response, project.version)
    return Project.model_validate(project)


@router.get("/{project}")
async def get(project: str, response: Response, space: SpaceDep, repos: ReposDep) -> Project:
    found = await get_project(repos, space, project)
    etag(response, found.version)
    return Project.model_validate(found)


@router.put("/{project}")
async def put(
    project: str,
    body: ProjectUpdate,
    if_match: IfMatchDep,
    response: Response,
    space: SpaceDep,
    repos: ReposDep,
) -> Project:
    found = await get_project(repos, space, project)
    updated = await update_project(
        repos,
        space,
        found,
        expected_version=expected_version(body.version, if_match),
        name=body.name,
        slug=body.slug,
        settings=body.model_dump(mode="json", exclude={"name", "slug", "version"}),
    )
    etag(response, updated.version)
    return Project.model_validate(updated)


@router.get("/{project}/deployment-process")
async def get_deployment_process(
    project: str, response: Response, space: SpaceDep, repos: ReposDep
) -> DeploymentProcess:
    found = await get_project(repos, space, project)
    process = await get_process(repos, found)
    etag(response, process.version)
    return DeploymentProcess.model_validate(
        {"project_id": found.id, "version": process.version, "steps": process_steps(process)}
    )


@router.put("/{project}/deployment-process")
async def put_deployment_process(
    project: str,
    body: DeploymentProcessUpdate,
    if_match: IfMatchDep,
    response: Response,
    space: SpaceDep,
    repos: ReposDep,
) -> DeploymentProcess:
    found = await get_project(repos, space, project)
    steps = [step.model_dump(mode="json") for step in body.steps]
    process = await replace_process(
        repos, space, found, steps, expected_version=expected_version(body.version, if_match)
    )
    etag(response, process.version)
    return DeploymentProcess.model_validate(
        {"project_id": found.id, "version": process.version, "steps": process_steps(process)}
    )
