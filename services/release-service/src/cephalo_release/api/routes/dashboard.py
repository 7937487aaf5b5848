from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.dashboard import dashboard
from cephalo_release.domain.project_groups import get_project_group
from cephalo_release.schemas.dashboard import Dashboard

router = APIRouter(prefix="/api/v1/spaces/{space}/dashboard", tags=["dashboard"])


@router.get("")
async def get(
    space: SpaceDep,
    repos: ReposDep,
    project_group: Annotated[str | None, Query(max_length=200)] = None,
) -> Dashboard:
    """Projects by environments: the release deployed last to each, its state and time."""
    group_id = (await get_project_group(repos, space, project_group)).id if project_group else None
    return Dashboard.model_validate(await dashboard(repos, space, group_id))
