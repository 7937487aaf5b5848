from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from cephalo_release.api.conventions import PagingDep, page
from cephalo_release.db.models import Release as ReleaseRow
from cephalo_release.deps import PackageSourceDep, ReposDep, SpaceDep
from cephalo_release.domain.channels import get_channel
from cephalo_release.domain.deployments import release_progression
from cephalo_release.domain.process import canonical_step
from cephalo_release.domain.projects import get_project
from cephalo_release.domain.releases import create_release, get_release
from cephalo_release.schemas.common import Page
from cephalo_release.schemas.lifecycles import Progression
from cephalo_release.schemas.releases import Release, ReleaseCreate

router = APIRouter(prefix="/api/v1/spaces/{space}", tags=["releases"])


def render(release: ReleaseRow) -> Release:
    return Release.model_validate(
        {
            **{c: getattr(release, c) for c in Release.model_fields if c != "steps"},
            "steps": [canonical_step(step) for step in release.process_snapshot],
        }
    )


@router.post("/projects/{project}/releases", status_code=201)
async def create(
    project: str, body: ReleaseCreate, space: SpaceDep, repos: ReposDep, feed: PackageSourceDep
) -> Release:
    """Package versions not given are the newest the channel allows in package-feed."""
    found = await get_project(repos, space, project)
    release = await create_release(
        repos,
        space,
        found,
        version=body.version,
        release_notes=body.release_notes,
        channel=body.channel,
        packages=[package.model_dump() for package in body.packages],
        package_source=feed,
    )
    return render(release)


@router.get("/projects/{project}/releases")
async def list_for_project(
    project: str,
    request: Request,
    paging: PagingDep,
    space: SpaceDep,
    repos: ReposDep,
    channel: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[Release]:
    """Newest first; `partial_name` filters on the release number."""
    found = await get_project(repos, space, project)
    channel_id = (await get_channel(repos, found, channel)).id if channel else None
    rows = await repos.releases.page_for_project(
        found.id,
        skip=paging.skip,
        take=paging.take,
        partial_version=paging.partial_name,
        channel_id=channel_id,
    )
    return page(request, rows, render)


@router.get("/releases/{release_id}")
async def get(release_id: uuid.UUID, space: SpaceDep, repos: ReposDep) -> Release:
    return render(await get_release(repos, space, release_id))


@router.get("/releases/{release_id}/progression")
async def progression(release_id: uuid.UUID, space: SpaceDep, repos: ReposDep) -> Progression:
    """Per phase and environment: can this release be deployed there now, and why not."""
    release = await get_release(repos, space, release_id)
    lifecycle, progress = await release_progression(repos, release)
    return Progression.model_validate(
        {
            "release_id": release.id,
            "lifecycle_id": lifecycle.id,
            "lifecycle_name": progress.lifecycle_name,
            "phases": progress.phases,
            "next_deployments": progress.next_deployments,
        }
    )
