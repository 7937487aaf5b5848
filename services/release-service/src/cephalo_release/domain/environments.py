"""Environments: where releases are deployed, ordered for the dashboard and lifecycles."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_release.db.models import Environment, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.common import check_version, resolve, unique_slug


async def _slug(repos: Repositories, space: Space, name: str, wanted: str | None) -> str:
    taken = await repos.environments.slugs_in_space(space.id)
    if wanted is None:
        return unique_slug(name, taken, "environment")
    if wanted in taken:
        raise Conflict(f"an environment with slug {wanted!r} already exists in this space")
    return wanted


async def create_environment(
    repos: Repositories,
    space: Space,
    *,
    name: str,
    slug: str | None = None,
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
            slug=await _slug(repos, space, name, slug),
            description=description,
            sort_order=order,
            use_guided_failure=use_guided_failure,
            allow_dynamic_infrastructure=allow_dynamic_infrastructure,
            version=1,
        )
    )


async def find_environment(repos: Repositories, space: Space, ref: str) -> Environment | None:
    return await resolve(
        ref,
        lambda id: repos.environments.find_in_space(space.id, id),
        lambda slug: repos.environments.find_by_slug(space.id, slug),
        lambda name: repos.environments.find_by_name(space.id, name),
    )


async def get_environment(repos: Repositories, space: Space, ref: str) -> Environment:
    """An environment by id, slug or name, inside `space` only."""
    environment = await find_environment(repos, space, ref)
    if environment is None:
        raise NotFound(f"environment {ref!r} was not found in this space")
    return environment


async def update_environment(
    repos: Repositories,
    space: Space,
    environment: Environment,
    *,
    expected_version: int | None,
    name: str,
    slug: str | None,
    description: str,
    use_guided_failure: bool,
    allow_dynamic_infrastructure: bool,
) -> Environment:
    check_version(expected_version, environment.version, "environment")
    same_name = await repos.environments.find_by_name(space.id, name)
    if same_name is not None and same_name.id != environment.id:
        raise Conflict(f"an environment named {name!r} already exists in this space")
    if slug is not None and slug != environment.slug:
        other = await repos.environments.find_by_slug(space.id, slug)
        if other is not None:
            raise Conflict(f"an environment with slug {slug!r} already exists in this space")
        environment.slug = slug
    environment.name = name
    environment.description = description
    environment.use_guided_failure = use_guided_failure
    environment.allow_dynamic_infrastructure = allow_dynamic_infrastructure
    environment.version += 1
    await repos.flush()
    return environment


async def reorder_environments(
    repos: Repositories, space: Space, order: Sequence[uuid.UUID]
) -> Sequence[Environment]:
    """Every environment of the space, each exactly once, in its new order."""
    environments = await repos.environments.list_in_space(space.id, lock=True)
    by_id = {environment.id: environment for environment in environments}
    if len(order) != len(set(order)):
        raise Invalid("each environment may appear only once in the new order")
    unknown = [str(id) for id in order if id not in by_id]
    if unknown:
        raise Invalid(f"not environments of this space: {', '.join(unknown)}")
    missing = [by_id[id].name for id in by_id if id not in set(order)]
    if missing:
        raise Invalid(f"the new order leaves out: {', '.join(sorted(missing))}")
    for position, id in enumerate(order):
        environment = by_id[id]
        if environment.sort_order != position:
            environment.sort_order = position
            environment.version += 1
    await repos.flush()
    return [by_id[id] for id in order]
