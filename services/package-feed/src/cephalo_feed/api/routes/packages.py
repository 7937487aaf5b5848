from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from cephalo_feed.deps import ReposDep
from cephalo_feed.domain.packages import get_package, list_packages
from cephalo_feed.schemas.packages import PackageVersion

router = APIRouter(prefix="/api/v1/spaces/{space_id}/packages", tags=["packages"])


@router.get("")
async def list_versions(
    space_id: uuid.UUID,
    repos: ReposDep,
    package_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[PackageVersion]:
    """Package versions in the space, newest published first."""
    found = await list_packages(repos, space_id, package_id=package_id, limit=limit, offset=offset)
    return [PackageVersion.model_validate(package) for package in found]


@router.get("/{id}")
async def get(space_id: uuid.UUID, id: uuid.UUID, repos: ReposDep) -> PackageVersion:
    return PackageVersion.model_validate(await get_package(repos, space_id, id))
