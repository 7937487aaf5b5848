"""Releases: immutable snapshots of a project's process at the time they were created."""

from __future__ import annotations

import copy
import uuid

from cephalo_common.contracts import ReleaseCreatedV1
from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_release.db.models import Project, Release, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.projects import get_process
from cephalo_release.events import publish


async def create_release(
    repos: Repositories, space: Space, project: Project, *, version: str, release_notes: str
) -> Release:
    """Versions are unique per project (case-insensitively); the process is copied, not linked."""
    if await repos.releases.find_by_version(project.id, version) is not None:
        raise Conflict(f"release {version} already exists for project {project.name}")
    process = await get_process(repos, project)
    if not process.steps:
        raise Invalid("the project's deployment process has no steps; add one before releasing")
    release = await repos.releases.add(
        Release(
            space_id=space.id,
            project_id=project.id,
            version=version,
            release_notes=release_notes,
            process_snapshot=copy.deepcopy(process.steps),
            process_version=process.version,
        )
    )
    publish.release_created(
        repos.session,
        str(space.id),
        ReleaseCreatedV1(release_id=str(release.id), project_id=str(project.id), version=version),
    )
    return release


async def get_release(repos: Repositories, space: Space, release_id: uuid.UUID) -> Release:
    release = await repos.releases.find_in_space(space.id, release_id)
    if release is None:
        raise NotFound(f"release {release_id} was not found in this space")
    return release
