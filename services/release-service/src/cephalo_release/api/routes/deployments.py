from __future__ import annotations

import uuid

from fastapi import APIRouter

from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.deployments import get_deployment, request_deployment
from cephalo_release.schemas.releases import Deployment, DeploymentCreate

router = APIRouter(prefix="/api/v1/spaces/{space}/deployments", tags=["deployments"])


@router.post("", status_code=201)
async def create(body: DeploymentCreate, space: SpaceDep, repos: ReposDep) -> Deployment:
    deployment = await request_deployment(
        repos, space, release_id=body.release_id, environment_id=body.environment_id
    )
    return Deployment.model_validate(deployment)


@router.get("/{deployment_id}")
async def get(deployment_id: uuid.UUID, space: SpaceDep, repos: ReposDep) -> Deployment:
    return Deployment.model_validate(await get_deployment(repos, space, deployment_id))
