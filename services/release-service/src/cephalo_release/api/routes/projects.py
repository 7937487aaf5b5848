from __future__ import annotations

from fastapi import APIRouter

from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.projects import (
    create_project,
    get_process,
    get_project,
    replace_process,
)
from cephalo_release.schemas.projects import (
    DeploymentProcess,
    DeploymentProcessUpdate,
    Project,
    ProjectCreate,
)

router = APIRouter(prefix="/api/v1/spaces/{space}/projects", tags=["projects"])


@router.get("")
async def list_projects(space: SpaceDep, repos: ReposDep) -> list[Project]:
    return [Project.model_validate(p) for p in await repos.projects.list_in_space(space.id)]


@router.post("", status_code=201)
async def create(body: ProjectCreate, space: SpaceDep, repos: ReposDep) -> Project:
    project = await create_project(repos, space, name=body.name, description=body.description)
    return Project.model_validate(project)


@router.get("/{project}")
async def get(project: str, space: SpaceDep, repos: ReposDep) -> Project:
    return Project.model_validate(await get_project(repos, space, project))


@router.get("/{project}/deployment-process")
async def get_deployment_process(
    project: str, space: SpaceDep, repos: ReposDep
) -> DeploymentProcess:
    found = await get_project(repos, space, project)
    return DeploymentProcess.model_validate(await get_process(repos, found))


@router.put("/{project}/deployment-process")
async def put_deployment_process(
    project: str, body: DeploymentProcessUpdate, space: SpaceDep, repos: ReposDep
) -> DeploymentProcess:
    found = await get_project(repos, space, project)
    steps = [step.model_dump(mode="json") for step in body.steps]
    process = await replace_process(repos, found, steps, expected_version=body.version)
    return DeploymentProcess.model_validate(process)
