"""Spaces: hard partitions. Every other resource resolves inside exactly one space."""

from __future__ import annotations

import uuid

from cephalo_common.errors import Conflict, NotFound
from cephalo_release.db.models import Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.lifecycles import create_default_lifecycle
from cephalo_release.domain.project_groups import create_default_project_group


async def resolve_space(repos: Repositories, ref: str) -> Space:
    """A space by id or slug (`default` names the installation's first space)."""
    space: Space | None
    try:
        space = await repos.spaces.find(uuid.UUID(ref))
    except ValueError:
        space = await repos.spaces.find_by_slug(ref)
    if space is None:
        raise NotFound(f"space {ref!r} was not found")
    return space


async def create_space(repos: Repositories, *, name: str, slug: str, description: str) -> Space:
    """A space starts with a default lifecycle and a default project group."""
    if await repos.spaces.find_by_slug(slug) is not None:
        raise Conflict(f"a space with slug {slug!r} already exists")
    space = await repos.spaces.add(Space(name=name, slug=slug, description=description))
    await create_default_lifecycle(repos, space)
    await create_default_project_group(repos, space)
    return space
