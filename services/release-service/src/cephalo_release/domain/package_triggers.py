"""Package triggers: a push of a package the process uses creates a release (Octopus §10.1).

The release goes to the trigger's channel when the channel's rules allow the pushed version,
never twice for the same version set: the inbox drops a redelivered `package.pushed`,
`triggered_releases` is the unique claim, and a release with the same versions in the
channel (made by hand) counts too.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from cephalo_common.errors import Conflict, Invalid
from cephalo_common.packages import normalize_version
from cephalo_release.db.models import Channel, Project, ProjectTrigger, Release, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.channels import channel_for_release
from cephalo_release.domain.package_versions import (
    BUILTIN_FEED,
    PackageVersionSource,
    broken_rule,
    describe,
    rules_for,
    select_package_versions,
)
from cephalo_release.domain.process import package_references
from cephalo_release.domain.projects import get_process, process_steps
from cephalo_release.domain.releases import create_release
from cephalo_release.domain.triggers import PACKAGE_PUSH


def _version_key(version: str) -> str:
    try:
        return normalize_version(version)
    except ValueError:
        return version.lower()


def version_set(selected: Sequence[Mapping[str, Any]]) -> str:
    """A stable key of the package versions of a release (`1.2` and `1.2.0` are one)."""
    return ";".join(
        sorted(
            f"{p['action_name']}:{p.get('package_reference', '')}".lower()
            + f"={_version_key(str(p['version']))}"
            for p in selected
        )
    )


async def _already_released(
    repos: Repositories, project: Project, channel: Channel, key: str
) -> bool:
    releases = await repos.releases.list_for_project(project.id)
    return any(
        release.channel_id == channel.id and version_set(release.selected_packages) == key
        for release in releases
    )


def _references_to(steps: Sequence[dict[str, Any]], package_id: str) -> list[tuple[str, str]]:
    """The (action, reference) pairs of the process that use `package_id` from the feed."""
    return [
        (action, name)
        for action, name, reference in package_references(steps)
        if str(reference["package_id"]).lower() == package_id.lower()
        and str(reference.get("feed_id") or BUILTIN_FEED) == BUILTIN_FEED
    ]


async def _release_pushed(
    repos: Repositories,
    space: Space,
    trigger: ProjectTrigger,
    pushed: tuple[str, str],
    source: PackageVersionSource | None,
) -> Release | None:
    """One trigger's answer to a push: a new release, or None (with the reason recorded)."""
    package_id, version = pushed
    project = await repos.projects.get(trigger.project_id)
    steps = process_steps(await get_process(repos, project))
    references = _references_to(steps, package_id)
    channel_ref = str(trigger.channel_id) if trigger.channel_id else None
    channel = await channel_for_release(repos, project, channel_ref)
    for action, name in references:
        rule = broken_rule(version, rules_for(channel.rules, action, name))
        if rule is not None:
            trigger.last_result = (
                f"{package_id} {version} is not allowed by the channel ({describe(rule)})"
            )
            return None
    explicit = [
        {"action_name": action, "package_reference": name, "version": version}
        for action, name in references
    ]
    selected = await select_package_versions(source, space.id, steps, explicit, channel.rules)
    return await _create_once(repos, space, project, channel, trigger, selected, source)


async def _create_once(
    repos: Repositories,
    space: Space,
    project: Project,
    channel: Channel,
    trigger: ProjectTrigger,
    selected: list[dict[str, str]],
    source: PackageVersionSource | None,
) -> Release | None:
    key = version_set(selected)
    if await _already_released(repos, project, channel, key):
        trigger.last_result = f"a release of {key} already exists in {channel.name}"
        return None
    if not await repos.triggered_releases.claim(channel.id, key):
        return None
    release = await create_release(
        repos,
        space,
        project,
        version=None,
        release_notes=f"Created by trigger {trigger.name}.",
        channel=str(channel.id),
        packages=selected,
        package_source=source,
    )
    await repos.triggered_releases.record_release(channel.id, key, release.id)
    trigger.last_result = f"created release {release.version}"
    return release


async def _uses(repos: Repositories, trigger: ProjectTrigger, package_id: str) -> bool:
    project = await repos.projects.get(trigger.project_id)
    if project.is_disabled:
        return False
    return bool(_references_to(process_steps(await get_process(repos, project)), package_id))


async def on_package_pushed(
    repos: Repositories,
    space_id: uuid.UUID,
    pushed: tuple[str, str],
    source: PackageVersionSource | None,
    now: datetime,
) -> list[Release]:
    """Every package trigger whose project uses the package answers the push in its own
    savepoint: one that cannot release records why, the others still do. A feed outage
    propagates (the event is redelivered)."""
    space = await repos.spaces.find(space_id)
    if space is None:
        return []
    created = []
    for trigger in await repos.triggers.enabled_of_kind(space.id, PACKAGE_PUSH):
        if not await _uses(repos, trigger, pushed[0]):
            continue
        trigger.last_run_at = now
        try:
            async with repos.session.begin_nested():
                release = await _release_pushed(repos, space, trigger, pushed, source)
        except (Invalid, Conflict) as error:
            trigger.last_result = f"no release: {error.detail}"
            release = None
        if release is not None:
            created.append(release)
    await repos.flush()
    return created
