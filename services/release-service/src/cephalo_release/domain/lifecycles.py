"""Lifecycles: ordered phases of environments, and how long releases and files are kept.

A lifecycle is edited as one document (its phases are JSON on the row). Retention set on a
phase overrides the lifecycle's; a phase without one inherits from the latest earlier phase
that has one, else from the lifecycle (Octopus §2.3). Retention is stored and shown here;
the retention task that enforces it comes later.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.ids import uuid7
from cephalo_release.db.models import Lifecycle, Project, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.common import check_version, resolve, unique_slug
from cephalo_release.domain.progression import LifecycleSpec, PhaseSpec

DEFAULT_LIFECYCLE_NAME = "Default Lifecycle"
ANY_ENVIRONMENT_PHASE = "Any environment"
KEEP_FOREVER: dict[str, Any] = {"strategy": "Forever", "quantity_to_keep": 0, "unit": "Items"}
Policy = dict[str, Any]


def effective_retention(
    lifecycle_policy: Policy, phase_policies: Sequence[Policy | None]
) -> list[Policy]:
    """Each phase's policy after inheritance: its own, the latest earlier one, or the lifecycle's."""
    inherited = lifecycle_policy
    result = []
    for policy in phase_policies:
        if policy is not None:
            inherited = policy
        result.append(inherited)
    return result


def lifecycle_spec(lifecycle: Lifecycle) -> LifecycleSpec:
    """The lifecycle as progression reads it."""
    return LifecycleSpec(
        name=lifecycle.name,
        phases=tuple(
            PhaseSpec(
                id=str(phase["id"]),
                name=str(phase["name"]),
                automatic_environment_ids=tuple(
                    uuid.UUID(str(id)) for id in phase.get("automatic_environment_ids", [])
                ),
                optional_environment_ids=tuple(
                    uuid.UUID(str(id)) for id in phase.get("optional_environment_ids", [])
                ),
                minimum_environments_before_promotion=int(
                    phase.get("minimum_environments_before_promotion", 0)
                ),
                is_optional_phase=bool(phase.get("is_optional_phase", False)),
            )
            for phase in lifecycle.phases
        ),
    )


def rendered_phases(lifecycle: Lifecycle) -> list[dict[str, Any]]:
    """Phases with their effective (inherited) retention policies, for reading."""
    releases = effective_retention(
        lifecycle.release_retention_policy,
        [phase.get("release_retention_policy") for phase in lifecycle.phases],
    )
    targets = effective_retention(
        lifecycle.target_retention_policy,
        [phase.get("target_retention_policy") for phase in lifecycle.phases],
    )
    return [
        {
            **phase,
            "effective_release_retention_policy": release,
            "effective_target_retention_policy": target,
        }
        for phase, release, target in zip(lifecycle.phases, releases, targets, strict=True)
    ]


def any_environment_phase() -> dict[str, Any]:
    """The one phase of a space's first lifecycle: every environment, deployed by hand."""
    return {
        "id": str(uuid7()),
        "name": ANY_ENVIRONMENT_PHASE,
        "automatic_environment_ids": [],
        "optional_environment_ids": [],
        "minimum_environments_before_promotion": 0,
        "is_optional_phase": False,
        "release_retention_policy": None,
        "target_retention_policy": None,
    }


async def create_default_lifecycle(repos: Repositories, space: Space) -> Lifecycle:
    """A space starts with a lifecycle that lets a release go to any environment in any order,
    so nothing is held back until someone defines phases (see the README's decisions)."""
    return await repos.lifecycles.add(
        Lifecycle(
            space_id=space.id,
            name=DEFAULT_LIFECYCLE_NAME,
            slug="default-lifecycle",
            description="One phase with every environment; define phases to promote in order.",
            is_default=True,
            release_retention_policy=dict(KEEP_FOREVER),
            target_retention_policy=dict(KEEP_FOREVER),
            phases=[any_environment_phase()],
            version=1,
        )
    )


async def default_lifecycle(repos: Repositories, space: Space) -> Lifecycle:
    found = await repos.lifecycles.find_default(space.id)
    return found if found is not None else await create_default_lifecycle(repos, space)


async def find_lifecycle(repos: Repositories, space: Space, ref: str) -> Lifecycle | None:
    return await resolve(
        ref,
        lambda id: repos.lifecycles.find_in_space(space.id, id),
        lambda slug: repos.lifecycles.find_by_slug(space.id, slug),
        lambda name: repos.lifecycles.find_by_name(space.id, name),
    )


async def get_lifecycle(repos: Repositories, space: Space, ref: str) -> Lifecycle:
    lifecycle = await find_lifecycle(repos, space, ref)
    if lifecycle is None:
        raise NotFound(f"lifecycle {ref!r} was not found in this space")
    return lifecycle


async def lifecycle_of(repos: Repositories, project: Project, channel_id: uuid.UUID) -> Lifecycle:
    """The channel's lifecycle when it overrides one, else the project's."""
    channel = await repos.channels.find_in_project(project.id, channel_id)
    lifecycle_id = (
        channel.lifecycle_id
        if channel is not None and channel.lifecycle_id is not None
        else project.lifecycle_id
    )
    return await repos.lifecycles.get(lifecycle_id)


async def _validated_phases(
    repos: Repositories, space: Space, phases: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Known environments, each in at most one phase; unique phase names; reachable minimums."""
    known = {environment.id for environment in await repos.environments.list_in_space(space.id)}
    errors: list[dict[str, str]] = []
    names: set[str] = set()
    placed: set[uuid.UUID] = set()
    for index, phase in enumerate(phases):
        where = f"body.phases.{index}"
        if phase["name"].lower() in names:
            errors.append(_error(f"{where}.name", "phase names must be unique in a lifecycle"))
        names.add(phase["name"].lower())
        named = [
            *phase["automatic_environment_ids"],
            *phase["optional_environment_ids"],
        ]
        for ref in named:
            environment_id = uuid.UUID(str(ref))
            if environment_id not in known:
                errors.append(_error(where, f"environment {ref} is not in this space"))
            elif environment_id in placed:
                errors.append(_error(where, f"environment {ref} is already in a phase"))
            placed.add(environment_id)
        minimum = int(phase["minimum_environments_before_promotion"])
        if named and minimum > len(named):
            errors.append(
                _error(
                    f"{where}.minimum_environments_before_promotion",
                    f"the phase has only {len(named)} environments",
                )
            )
    if errors:
        raise Invalid("the lifecycle's phases are not valid", errors=errors)
    return [{**phase, "id": str(phase.get("id") or uuid7())} for phase in phases]


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message, "code": "invalid"}


async def create_lifecycle(
    repos: Repositories,
    space: Space,
    *,
    name: str,
    slug: str | None,
    description: str,
    release_retention_policy: Policy,
    target_retention_policy: Policy,
    phases: Sequence[Mapping[str, Any]],
) -> Lifecycle:
    if await repos.lifecycles.find_by_name(space.id, name) is not None:
        raise Conflict(f"a lifecycle named {name!r} already exists in this space")
    taken = await repos.lifecycles.slugs_in_space(space.id)
    if slug is not None and slug in taken:
        raise Conflict(f"a lifecycle with slug {slug!r} already exists in this space")
    return await repos.lifecycles.add(
        Lifecycle(
            space_id=space.id,
            name=name,
            slug=slug or unique_slug(name, taken, "lifecycle"),
            description=description,
            is_default=False,
            release_retention_policy=release_retention_policy,
            target_retention_policy=target_retention_policy,
            phases=await _validated_phases(repos, space, phases),
            version=1,
        )
    )


async def update_lifecycle(
    repos: Repositories,
    space: Space,
    lifecycle: Lifecycle,
    *,
    expected_version: int | None,
    name: str,
    slug: str | None,
    description: str,
    release_retention_policy: Policy,
    target_retention_policy: Policy,
    phases: Sequence[Mapping[str, Any]],
) -> Lifecycle:
    check_version(expected_version, lifecycle.version, "lifecycle")
    other = await repos.lifecycles.find_by_name(space.id, name)
    if other is not None and other.id != lifecycle.id:
        raise Conflict(f"a lifecycle named {name!r} already exists in this space")
    if slug is not None and slug != lifecycle.slug:
        if await repos.lifecycles.find_by_slug(space.id, slug) is not None:
            raise Conflict(f"a lifecycle with slug {slug!r} already exists in this space")
        lifecycle.slug = slug
    lifecycle.phases = await _validated_phases(repos, space, phases)
    lifecycle.name = name
    lifecycle.description = description
    lifecycle.release_retention_policy = release_retention_policy
    lifecycle.target_retention_policy = target_retention_policy
    lifecycle.version += 1
    await repos.flush()
    return lifecycle
