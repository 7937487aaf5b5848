"""Environments: where releases are deployed, ordered for the dashboard and lifecycles."""

from __future__ import annotations

import uuid

from cephalo_common.errors import Conflict, NotFound
from cephalo_release.db.models import Environment, Space
from cephalo_release.db.repositories import Repositories


async def create_environment(
    repos: Repositories,
    space: Space,
    *,
    name: str,
    description: str = "",
    sort_order: int | None = None,
    use_guided_failure: bool = False,
    allow_dynamic_infrastructure: bool = False,
) -> Environment:
    """Names are unique per space, case-insensitively, as in Octopus."""
    if await repos.environments.find_by_name(space.id, name) is not None:
        raise Conflict(f"an environment named {name!r} already exists in this space")
    order = (
        sort_order if sort_order is not None else await repos.environments.next_sort_order(space.id)
    )
    return await repos.environments.add(
        Environment(
            space_id=space.id,
            name=name,
            description=description,
            sort_order=order,
            use_guided_failure=use_guided_failure,
            allow_dynamic_infrastructure=allow_dynamic_infrastructure,
        )
    )


async def get_environment(repos: Repositories, space: Space, ref: str) -> Environment:
    """An environment by id or by name, inside `space` only."""
    environment: Environment | None
    try:
        environment = await repos.environments.find_in_space(space.id, uuid.UUID(ref))
    except ValueError:
        environment = await repos.environments.find_by_name(space.id, ref)
    if environment is None:
        raise NotFound(f"environment {ref!r} was not found in this space")
    return environment
