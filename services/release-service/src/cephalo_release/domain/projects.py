"""Projects, their settings, and their deployment process (the steps a release snapshots)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from cephalo_common.errors import Conflict, NotFound
from cephalo_release.db.models import DeploymentProcess, Project, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.channels import create_default_channel
from cephalo_release.domain.common import check_version, resolve, slugify, unique_slug
from cephalo_release.domain.lifecycles import default_lifecycle, get_lifecycle
from cephalo_release.domain.process import canonical_step, validate_process, with_ids
from cephalo_release.domain.project_groups import default_project_group, get_project_group

__all__ = ["ProjectSettings", "create_project", "get_project", "slugify"]

DEFAULT_CONNECTIVITY: dict[str, bool] = {
    "skip_unavailable_targets": False,
    "exclude_unhealthy_targets": False,
    "allow_deployments_to_no_targets": False,
}
DEFAULT_VERSIONING: dict[str, Any] = {
    "template": "#{Cephalo.Version.LastMajor}.#{Cephalo.Version.LastMinor}."
    "#{Cephalo.Version.NextPatch}",
    "donor_package": None,
}
ProjectSettings = Mapping[str, Any]
"""`description`, `project_group`, `lifecycle` (references), `default_guided_failure_mode`,
`connectivity_policy`, `versioning_strategy`, `is_disabled`."""


async def _apply_settings(
    repos: Repositories, space: Space, project: Project, settings: ProjectSettings
) -> None:
    group_ref, lifecycle_ref = settings.get("project_group"), settings.get("lifecycle")
    group = (
        await get_project_group(repos, space, group_ref)
        if group_ref
        else await default_project_group(repos, space)
    )
    lifecycle = (
        await get_lifecycle(repos, space, lifecycle_ref)
        if lifecycle_ref
        else await default_lifecycle(repos, space)
    )
    project.project_group_id = group.id
    project.lifecycle_id = lifecycle.id
    project.description = settings.get("description", "")
    project.default_guided_failure_mode = settings.get(
        "default_guided_failure_mode", "EnvironmentDefault"
    )
    project.connectivity_policy = dict(settings.get("connectivity_policy") or DEFAULT_CONNECTIVITY)
    project.versioning_strategy = dict(settings.get("versioning_strategy") or DEFAULT_VERSIONING)
    project.is_disabled = bool(settings.get("is_disabled", False))


async def create_project(
    repos: Repositories,
    space: Space,
    *,
    name: str,
    slug: str | None = None,
    settings: ProjectSettings | None = None,
) -> Project:
    """A project starts with an empty process and a default channel."""
    if await repos.projects.find_by_name(space.id, name) is not None:
        raise Conflict(f"a project named {name!r} already exists in this space")
    taken = await repos.projects.slugs_in_space(space.id)
    if slug is not None and slug in taken:
        raise Conflict(f"a project with slug {slug!r} already exists in this space")
    project = Project(
        space_id=space.id, name=name, slug=slug or unique_slug(name, taken, "project"), version=1
    )
    await _apply_settings(repos, space, project, settings or {})
    await repos.projects.add(project)
    await repos.processes.add(DeploymentProcess(project_id=project.id, version=1, steps=[]))
    await create_default_channel(repos, project)
    return project


async def update_project(
    repos: Repositories,
    space: Space,
    project: Project,
    *,
    expected_version: int | None,
    name: str,
    slug: str | None,
    settings: ProjectSettings,
) -> Project:
    check_version(expected_version, project.version, "project")
    other = await repos.projects.find_by_name(space.id, name)
    if other is not None and other.id != project.id:
        raise Conflict(f"a project named {name!r} already exists in this space")
    if slug is not None and slug != project.slug:
        if await repos.projects.find_by_slug(space.id, slug) is not None:
            raise Conflict(f"a project with slug {slug!r} already exists in this space")
        project.slug = slug
    project.name = name
    await _apply_settings(repos, space, project, settings)
    project.version += 1
    await repos.flush()
    return project


async def get_project(repos: Repositories, space: Space, ref: str) -> Project:
    """A project by id, slug or name, inside `space` only."""
    project = await resolve(
        ref,
        lambda id: repos.projects.find_in_space(space.id, id),
        lambda slug: repos.projects.find_by_slug(space.id, slug),
        lambda name: repos.projects.find_by_name(space.id, name),
    )
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


def process_steps(process: DeploymentProcess) -> list[dict[str, Any]]:
    """The steps in today's shape (processes saved in the first, flat shape are converted)."""
    return [canonical_step(step) for step in process.steps]


async def replace_process(
    repos: Repositories,
    space: Space,
    project: Project,
    steps: Sequence[dict[str, Any]],
    *,
    expected_version: int | None,
) -> DeploymentProcess:
    """Replace the steps; a stale `expected_version` means someone else saved first.

    The version may still be left out (the first clients did): the write then wins.
    """
    process = await get_process(repos, project, lock=True)
    check_version(expected_version, process.version, "deployment process", required=False)
    environments = {e.id for e in await repos.environments.list_in_space(space.id)}
    channels = await repos.channels.ids_in_project(project.id)
    validate_process(steps, environment_ids=environments, channel_ids=channels)
    process.steps = with_ids(steps)
    process.version += 1
    await repos.flush()
    return process
