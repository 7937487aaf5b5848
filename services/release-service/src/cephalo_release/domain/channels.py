"""Channels: release streams of a project, each with an optional lifecycle and version rules.

Every project has exactly one default channel; a release belongs to one channel. Version
rules (NuGet or Maven ranges, pre-release tag regexes) are checked at release creation
(`package_versions`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.packages import (
    is_valid_version_range,
    parse_version,
    prerelease_tag_matches,
    version_in_range,
)
from cephalo_release.db.models import Channel, Project, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.common import as_uuid, check_version, unique_slug
from cephalo_release.domain.lifecycles import get_lifecycle

DEFAULT_CHANNEL_NAME = "Default"


@dataclass(frozen=True)
class RuleTrial:
    """What one version rule says of one version, half by half (Octopus's rule tester)."""

    version: str
    version_range: str
    tag: str
    is_version: bool
    satisfies_version_range: bool
    satisfies_tag: bool

    @property
    def matches(self) -> bool:
        return self.is_version and self.satisfies_version_range and self.satisfies_tag


def try_rule(version: str, version_range: str, tag: str) -> RuleTrial:
    """Whether `version` passes the rule; an invalid range or regex is `Invalid` (422),
    a string that is not a version simply does not match."""
    _validated_rules([{"version_range": version_range, "tag": tag}])
    try:
        parse_version(version)
    except ValueError:
        return RuleTrial(version, version_range, tag, False, False, False)
    return RuleTrial(
        version,
        version_range,
        tag,
        True,
        version_in_range(version, version_range),
        prerelease_tag_matches(version, tag),
    )


async def create_default_channel(repos: Repositories, project: Project) -> Channel:
    return await repos.channels.add(
        Channel(
            space_id=project.space_id,
            project_id=project.id,
            name=DEFAULT_CHANNEL_NAME,
            slug="default",
            description="",
            lifecycle_id=None,
            is_default=True,
            rules=[],
            version=1,
        )
    )


async def find_channel(repos: Repositories, project: Project, ref: str) -> Channel | None:
    as_id = as_uuid(ref)
    if as_id is not None:
        found = await repos.channels.find_in_project(project.id, as_id)
        if found is not None:
            return found
    return await repos.channels.find_by_slug_in_project(
        project.id, ref
    ) or await repos.channels.find_by_name_in_project(project.id, ref)


async def get_channel(repos: Repositories, project: Project, ref: str) -> Channel:
    channel = await find_channel(repos, project, ref)
    if channel is None:
        raise NotFound(f"channel {ref!r} was not found in project {project.name}")
    return channel


async def channel_for_release(repos: Repositories, project: Project, ref: str | None) -> Channel:
    if ref is not None:
        return await get_channel(repos, project, ref)
    channel = await repos.channels.find_default(project.id)
    return channel if channel is not None else await create_default_channel(repos, project)


def _is_regex(text: str) -> bool:
    try:
        re.compile(text)
    except re.error:
        return False
    return True


def _validated_rules(rules: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    errors = []
    for index, rule in enumerate(rules):
        if rule["version_range"] and not is_valid_version_range(rule["version_range"]):
            errors.append(
                {
                    "field": f"body.rules.{index}.version_range",
                    "message": f"{rule['version_range']!r} is not a NuGet or Maven range",
                    "code": "invalid",
                }
            )
        if rule["tag"] and not _is_regex(rule["tag"]):
            errors.append(
                {
                    "field": f"body.rules.{index}.tag",
                    "message": f"{rule['tag']!r} is not a regular expression",
                    "code": "invalid",
                }
            )
    if errors:
        raise Invalid("the channel's version rules are not valid", errors=errors)
    return [dict(rule) for rule in rules]


async def _lifecycle_id(repos: Repositories, space: Space, ref: str | None) -> Any:
    return None if ref is None else (await get_lifecycle(repos, space, ref)).id


async def _make_default(repos: Repositories, project: Project, channel: Channel) -> None:
    current = await repos.channels.find_default(project.id, lock=True)
    if current is not None and current.id != channel.id:
        current.is_default = False
        current.version += 1
        await repos.flush()
    channel.is_default = True


async def create_channel(
    repos: Repositories,
    space: Space,
    project: Project,
    *,
    name: str,
    slug: str | None,
    description: str,
    lifecycle: str | None,
    is_default: bool,
    rules: Sequence[Mapping[str, Any]],
) -> Channel:
    if await repos.channels.find_by_name_in_project(project.id, name) is not None:
        raise Conflict(f"project {project.name} already has a channel named {name!r}")
    taken = await repos.channels.slugs_in_project(project.id)
    if slug is not None and slug in taken:
        raise Conflict(f"project {project.name} already has a channel with slug {slug!r}")
    channel = Channel(
        space_id=space.id,
        project_id=project.id,
        name=name,
        slug=slug or unique_slug(name, taken, "channel"),
        description=description,
        lifecycle_id=await _lifecycle_id(repos, space, lifecycle),
        is_default=False,
        rules=_validated_rules(rules),
        version=1,
    )
    if is_default:
        await _make_default(repos, project, channel)
    return await repos.channels.add(channel)


async def update_channel(
    repos: Repositories,
    space: Space,
    project: Project,
    channel: Channel,
    *,
    expected_version: int | None,
    name: str,
    slug: str | None,
    description: str,
    lifecycle: str | None,
    is_default: bool,
    rules: Sequence[Mapping[str, Any]],
) -> Channel:
    check_version(expected_version, channel.version, "channel")
    other = await repos.channels.find_by_name_in_project(project.id, name)
    if other is not None and other.id != channel.id:
        raise Conflict(f"project {project.name} already has a channel named {name!r}")
    if slug is not None and slug != channel.slug:
        if await repos.channels.find_by_slug_in_project(project.id, slug) is not None:
            raise Conflict(f"project {project.name} already has a channel with slug {slug!r}")
        channel.slug = slug
    if channel.is_default and not is_default:
        raise Invalid("a project always has a default channel: make another one the default")
    channel.rules = _validated_rules(rules)
    channel.lifecycle_id = await _lifecycle_id(repos, space, lifecycle)
    channel.name = name
    channel.description = description
    if is_default and not channel.is_default:
        await _make_default(repos, project, channel)
    channel.version += 1
    await repos.flush()
    return channel
