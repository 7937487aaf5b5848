"""The dry-run plan: which steps would run on which targets, in which order, and why not."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from cephalo_common.contracts import DeploymentRequestedV1
from cephalo_orchestrator.deps import DirectoryDep, LimitsDep
from cephalo_orchestrator.domain.dry_run import dry_run
from cephalo_orchestrator.schemas.plans import DeploymentPlanView

router = APIRouter(prefix="/api/v1/spaces/{space_id}/deployment-plans", tags=["plans"])


@router.post("")
async def plan(
    space_id: uuid.UUID,
    body: DeploymentRequestedV1,
    directory: DirectoryDep,
    limits: LimitsDep,
    variables: Annotated[bool, Query(description="Include each run's variables.")] = True,
) -> DeploymentPlanView:
    """Plan a deployment (the body is a `deployment.requested` payload) and create nothing."""
    result = await dry_run(space_id, body, directory, limits=limits, with_variables=variables)
    return DeploymentPlanView.of(result)
