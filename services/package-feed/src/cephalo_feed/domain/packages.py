"""Packages: immutable versions of a named artifact, each living in exactly one space."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from cephalo_common.errors import NotFound
from cephalo_feed.db.models import Package
from cephalo_feed.db.repositories import Repositories


async def get_package(repos: Repositories, space_id: uuid.UUID, id: uuid.UUID) -> Package:
    """A package version by id; one from another space is as unknown as a missing one."""
    package = await repos.packages.find_in_space(space_id, id)
    if package is None:
        raise NotFound(f"package {id} was not found in this space")
    return package


async def list_packages(
    repos: Repositories,
    space_id: uuid.UUID,
    *,
    package_id: str | None = None,
    limit: int,
    offset: int,
) -> Sequence[Package]:
    """Newest published first, optionally only the versions of one package id."""
    return await repos.packages.list_in_space(
        space_id, package_id=package_id, limit=limit, offset=offset
    )
