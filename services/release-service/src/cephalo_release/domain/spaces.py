"""Spaces: hard partitions. Every other resource resolves inside exactly one space."""

from __future__ import annotations

import uuid

from cephalo_common.errors import Conflict, NotFound
from cephalo_release.db.models import Space
from cephalo_release.db.repositories import Repositories


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
    if await repos.spaces.find_by_slug(slug) is not None:
        raise Conflict(f"a space with slug {slug!r} already exists")
    return await repos.spaces.add(Space(name=name, slug=slug, description=description))
