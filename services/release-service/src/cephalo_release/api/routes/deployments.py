from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from cephalo_release.api.conventions import PagingDep, page
from cephalo_release.db.repositories import DeploymentFilter
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.deployments import (
    DeploymentOptions,
    get_deployment,
    redeploy,
    request_deployment,
    rollback,
)
from cephalo_release.domain.environments import get_environment
from cephalo_release.domain.projects import get_project
from cephalo_release.identity import RequesterDep
from cephalo_release.schemas.common import Page
from cephalo_release.schemas.releases import (
    Deployment,
    DeploymentCreate,
    RedeployCreate,
    RollbackCreate,
)
from cephalo_release.schemas.releases import DeploymentOptions as OptionsBody

router = APIRouter(prefix="/api/v1/spaces/{space}/deployments", tags=["deployments"])


def _options(body: OptionsBody, deployed_by: str | None) -> DeploymentOptions:
    return DeploymentOptions(
        specific_machine_ids=[str(id) for id in body.specific_machine_ids],
        excluded_machine_ids=[str(id) for id in body.excluded_machine_ids],
        skip_actions=body.skip_actions,
        use_guided_failure=body.use_guided_failure,
        queue_time=body.queue_time,
        queue_time_expiry=body.queue_time_expiry,
        comments=body.comments,
        prompted_values=body.prompted_variables,
        deployed_by=deployed_by,
    )


@router.post("", status_code=201)
async def create(
    body: DeploymentCreate, space: SpaceDep, repos: ReposDep, requester: RequesterDep
) -> Deployment:
    """Checks the lifecycle: a 422 names the phase that blocks the environment."""
    deployment = await request_deployment(
        repos,
        space,
        release_id=body.release_id,
        environment_id=body.environment_id,
        options=_options(body, requester),
    )
    return Deployment.model_validate(deployment)


@router.get("")
async def list_deployments(
    request: Request,
    paging: PagingDep,
    space: SpaceDep,
    repos: ReposDep,
    project_id: uuid.UUID | None = None,
    environment_id: uuid.UUID | None = None,
    release_id: uuid.UUID | None = None,
    state: Annotated[str | None, Query(max_length=30)] = None,
) -> Page[Deployment]:
    """Newest first."""
    rows = await repos.deployments.page_filtered(
        space.id,
        skip=paging.skip,
        take=paging.take,
        filter=DeploymentFilter(project_id, environment_id, release_id, state),
    )
    return page(request, rows, Deployment.model_validate)


@router.post("/rollback", status_code=201)
async def create_rollback(
    body: RollbackCreate, space: SpaceDep, repos: ReposDep, requester: RequesterDep
) -> Deployment:
    """Deploy the release that succeeded in the environment before the current one."""
    project = await get_project(repos, space, body.project)
    environment = await get_environment(repos, space, body.environment)
    deployment = await rollback(repos, space, project, environment, _options(body, requester))
    return Deployment.model_validate(deployment)


@router.get("/{deployment_id}")
async def get(deployment_id: uuid.UUID, space: SpaceDep, repos: ReposDep) -> Deployment:
    return Deployment.model_validate(await get_deployment(repos, space, deployment_id))


@router.post("/{deployment_id}/redeploy", status_code=201)
async def create_redeploy(
    deployment_id: uuid.UUID,
    body: RedeployCreate,
    space: SpaceDep,
    repos: ReposDep,
    requester: RequesterDep,
) -> Deployment:
    previous = await get_deployment(repos, space, deployment_id)
    deployment = await redeploy(
        repos,
        space,
        previous,
        queue_time=body.queue_time,
        queue_time_expiry=body.queue_time_expiry,
        comments=body.comments,
        deployed_by=requester,
    )
    return Deployment.model_validate(deployment)
