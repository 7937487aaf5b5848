"""Projects and their deployment process (the steps a release will snapshot)."""

from __future__ import annotations

import re
import uuid
from typing import Any

from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.ids import uuid7
from cephalo_release.db.models import DeploymentProcess, Project, Space
from cephalo_release.db.repositories import Repositories


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "project"


async def create_project(
    repos: Repositories, space: Space, *, name: str, description: str
) -> Project:
    if await repos.projects.find_by_name(space.id, name) is not None:
        raise Conflict(f"a project named {name!r} already exists in this space")
    project = await repos.projects.add(
        Project(space_id=space.id, name=name, slug=slugify(name), description=description)
    )
    await repos.processes.add(DeploymentProcess(project_id=project.id, version=1, steps=[]))
    return project


async def get_project(repos: Repositories, space: Space, ref: str) -> Project:
    """A project by id or by name, inside `space` only."""
    project: Project | None
    try:
        project = await repos.projects.find_in_space(space.id, uuid.UUID(ref))
    except ValueError:
        project = await repos.projects.find_by_name(space.id, ref)
    if project is None:
        raise NotFound(f"project {ref!r} was not found in this space")
    return project


async def get_process(
    repos: Repositories, project: Project, *, lock: bool = False
) -> DeploymentProcess:
    process = await repos.processes.find_for_project(project.id, lock=lock)
    if process is None:
        raise NotFound(f"project {project.id} has no deployment process")
    return process


async def replace_process(
    repos: Repositories,
    project: Project,
    steps: list[dict[str, Any]],
    *,
    expected_version: int | None,
) -> DeploymentProcess:
    """Replace the steps; a stale `expected_version` means someone else saved first."""
    process = await get_process(repos, project, lock=True)
    if expected_version is not None and expected_version != process.version:
        raise Conflict(
            f"the process changed since version {expected_version} (now {process.version}); "
            "reload and apply your change again"
        )
    names = [step["name"].lower() for step in steps]
    if len(names) != len(set(names)):
        raise Invalid("step names must be unique within a process")
    process.steps = [{**step, "id": str(step.get("id") or uuid7())} for step in steps]
    process.version += 1
    await repos.session.flush()
    return process
