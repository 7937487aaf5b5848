"""Project groups: how projects are arranged on the dashboard. Every space has a default one."""

from __future__ import annotations

from cephalo_common.errors import Conflict, NotFound
from cephalo_release.db.models import ProjectGroup, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.common import check_version, resolve, unique_slug

DEFAULT_PROJECT_GROUP_NAME = "Default Project Group"


async def create_default_project_group(repos: Repositories, space: Space) -> ProjectGroup:
    return await repos.project_groups.add(
        ProjectGroup(
            space_id=space.id,
            name=DEFAULT_PROJECT_GROUP_NAME,
            slug="default-project-group",
            description="",
            is_default=True,
            version=1,
        )
    )


async def default_project_group(repos: Repositories, space: Space) -> ProjectGroup:
    found = await repos.project_groups.find_default(space.id)
    return found if found is not None else await create_default_project_group(repos, space)


async def find_project_group(repos: Repositories, space: Space, ref: str) -> ProjectGroup | None:
    return await resolve(
        ref,
        lambda id: repos.project_groups.find_in_space(space.id, id),
        lambda slug: repos.project_groups.find_by_slug(space.id, slug),
        lambda name: repos.project_groups.find_by_name(space.id, name),
    )


async def get_project_group(repos: Repositories, space: Space, ref: str) -> ProjectGroup:
    group = await find_project_group(repos, space, ref)
    if group is None:
        raise NotFound(f"project group {ref!r} was not found in this space")
    return group


async def create_project_group(
    repos: Repositories, space: Space, *, name: str, slug: str | None, description: str
) -> ProjectGroup:
    if await repos.project_groups.find_by_name(space.id, name) is not None:
        raise Conflict(f"a project group named {name!r} already exists in this space")
    taken = await repos.project_groups.slugs_in_space(space.id)
    if slug is not None and slug in taken:
        raise Conflict(f"a project group with slug {slug!r} already exists in this space")
    return await repos.project_groups.add(
        ProjectGroup(
            space_id=space.id,
            name=name,
            slug=slug or unique_slug(name, taken, "group"),
            description=description,
            is_default=False,
            version=1,
        )
    )


async def update_project_group(
    repos: Repositories,
    space: Space,
    group: ProjectGroup,
    *,
    expected_version: int | None,
    name: str,
    slug: str | None,
    description: str,
) -> ProjectGroup:
    check_version(expected_version, group.version, "project group")
    other = await repos.project_groups.find_by_name(space.id, name)
    if other is not None and other.id != group.id:
        raise Conflict(f"a project group named {name!r} already exists in this space")
    if slug is not None and slug != group.slug:
        if await repos.project_groups.find_by_slug(space.id, slug) is not None:
            raise Conflict(f"a project group with slug {slug!r} already exists in this space")
        group.slug = slug
    group.name = name
    group.description = description
    group.version += 1
    await repos.flush()
    return group
