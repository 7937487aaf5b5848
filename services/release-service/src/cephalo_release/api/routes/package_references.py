"""Which package versions releases use: package-feed's retention and deletes ask this."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.package_versions import versions_used
from cephalo_release.schemas.releases import PackageReferences

router = APIRouter(prefix="/api/v1/spaces/{space}", tags=["releases"])


@router.get("/package-references")
async def package_references(
    space: SpaceDep,
    repos: ReposDep,
    package_id: Annotated[str, Query(min_length=1, max_length=100)],
) -> PackageReferences:
    """Every version of `package_id` (case-insensitive) that some release of the space uses."""
    releases = await repos.releases.list_mentioning(space.id, package_id)
    return PackageReferences(package_id=package_id, versions=versions_used(releases, package_id))
