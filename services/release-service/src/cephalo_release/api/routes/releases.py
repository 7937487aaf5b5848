from __future__ import annotations

import uuid

from fastapi import APIRouter

from cephalo_release.db.models import Release as ReleaseRow
from cephalo_release.deps import ReposDep, SpaceDep
from cephalo_release.domain.projects import get_project
from cephalo_release.domain.releases import create_release, get_release
from cephalo_release.schemas.releases import Release, ReleaseCreate

router = APIRouter(prefix="/api/v1/spaces/{space}", tags=["releases"])


def render(release: ReleaseRow) -> Release:
    return Release.model_validate(
        {
            **{c: getattr(release, c) for c in Release.model_fields if c != "steps"},
            "steps": release.process_snapshot,
        }
    )


@router.post("/projects/{project}/releases", status_code=201)
async def create(project: str, body: ReleaseCreate, space: SpaceDep, repos: ReposDep) -> Release:
    found = await get_project(repos, space, project)
    release = await create_release(
        repos, space, found, version=body.version, release_notes=body.release_notes
    )
    return render(release)


@router.get("/projects/{project}/releases")
async def list_for_project(project: str, space: SpaceDep, repos: ReposDep) -> list[Release]:
    found = await get_project(repos, space, project)
    return [render(release) for release in await repos.releases.list_for_project(found.id)]


@router.get("/releases/{release_id}")
async def get(release_id: uuid.UUID, space: SpaceDep, repos: ReposDep) -> Release:
    return render(await get_release(repos, space, release_id))
