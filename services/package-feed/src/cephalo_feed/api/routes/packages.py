"""Reading and deleting package versions."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Path, Query, Response

from cephalo_feed.api.routes.common import collect_blob_later
from cephalo_feed.deps import FeedDep, ReposDep
from cephalo_feed.domain.packages import (
    ChannelRule,
    delete_version,
    get_package,
    get_version,
    latest_version,
    list_packages,
    list_versions,
    search_packages,
)
from cephalo_feed.schemas.packages import PackageSummary, PackageVersion, PackageVersionDetail

router = APIRouter(prefix="/api/v1/spaces/{space_id}/packages", tags=["packages"])

PackageIdPath = Annotated[str, Path(min_length=1, max_length=100)]
VersionPath = Annotated[str, Path(min_length=1, max_length=100)]
Limit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0)]
RangeQuery = Annotated[
    str, Query(max_length=1000, description="NuGet version range, e.g. [1.0,2.0)")
]
TagQuery = Annotated[
    str, Query(max_length=500, description="Pre-release tag regex, e.g. ^$ or ^beta")
]


@router.get("")
async def list_all(
    space_id: uuid.UUID,
    repos: ReposDep,
    package_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    filter: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PackageVersion]:
    """Package versions in the space, newest published first."""
    found = await list_packages(
        repos, space_id, package_id=package_id, filter=filter, limit=limit, offset=offset
    )
    return [PackageVersion.model_validate(package) for package in found]


@router.get("/ids")
async def search(
    space_id: uuid.UUID,
    repos: ReposDep,
    filter: Annotated[str | None, Query(max_length=100)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PackageSummary]:
    """Package ids (alphabetically, `filter` is a case-insensitive substring) with their
    newest version."""
    found = await search_packages(repos, space_id, filter=filter, limit=limit, offset=offset)
    return [PackageSummary.model_validate(summary) for summary in found]


@router.get("/{package_id}/versions")
async def versions(
    space_id: uuid.UUID,
    package_id: PackageIdPath,
    repos: ReposDep,
    version_range: RangeQuery = "",
    prerelease_tag: TagQuery = "",
    include_prerelease: bool = True,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PackageVersion]:
    """Versions of one package, newest first in semantic order, optionally through a
    channel's version rule."""
    rule = ChannelRule(version_range, prerelease_tag, include_prerelease)
    found = await list_versions(repos, space_id, package_id, rule, limit=limit, offset=offset)
    return [PackageVersion.model_validate(package) for package in found]


@router.get("/{package_id}/latest")
async def latest(
    space_id: uuid.UUID,
    package_id: PackageIdPath,
    repos: ReposDep,
    version_range: RangeQuery = "",
    prerelease_tag: TagQuery = "",
    include_prerelease: bool = True,
) -> PackageVersionDetail:
    """The newest version a channel with this rule would choose (404 when none fits)."""
    rule = ChannelRule(version_range, prerelease_tag, include_prerelease)
    return PackageVersionDetail.model_validate(
        await latest_version(repos, space_id, package_id, rule)
    )


@router.get("/{package_id}/versions/{version}")
async def get_one_version(
    space_id: uuid.UUID, package_id: PackageIdPath, version: VersionPath, repos: ReposDep
) -> PackageVersionDetail:
    """Metadata of one version (`1.0` finds `1.0.0.0`: versions compare semantically)."""
    return PackageVersionDetail.model_validate(
        await get_version(repos, space_id, package_id, version)
    )


@router.delete("/{package_id}/versions/{version}", status_code=204)
async def delete_one_version(
    space_id: uuid.UUID,
    package_id: PackageIdPath,
    version: VersionPath,
    repos: ReposDep,
    feed: FeedDep,
    background: BackgroundTasks,
    force: bool = False,
) -> Response:
    """Delete a version; 409 when a release uses it (or use cannot be checked) unless
    `force=true`."""
    package = await get_version(repos, space_id, package_id, version)
    await delete_version(repos, feed.references, package, force=force)
    background.add_task(collect_blob_later, feed, package.sha256)
    return Response(status_code=204)


@router.get("/{id}")
async def get(space_id: uuid.UUID, id: uuid.UUID, repos: ReposDep) -> PackageVersionDetail:
    return PackageVersionDetail.model_validate(await get_package(repos, space_id, id))


@router.delete("/{id}", status_code=204)
async def delete_by_id(
    space_id: uuid.UUID,
    id: uuid.UUID,
    repos: ReposDep,
    feed: FeedDep,
    background: BackgroundTasks,
    force: bool = False,
) -> Response:
    package = await get_package(repos, space_id, id)
    await delete_version(repos, feed.references, package, force=force)
    background.add_task(collect_blob_later, feed, package.sha256)
    return Response(status_code=204)
