"""Releases: immutable snapshots of a project's process and chosen package versions.

The release number is explicit or rendered from the project's versioning strategy; the
variables are snapshotted by `variable_snapshots.take_snapshot`. Package versions are explicit until package-feed can be
asked for the newest version a channel allows (`PackageVersionSource`).
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from cephalo_common.contracts import ReleaseCreatedV1
from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.ids import utc_now
from cephalo_release.db.models import Project, Release, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.channels import channel_for_release, rule_violations
from cephalo_release.domain.deployments import promote
from cephalo_release.domain.process import package_references
from cephalo_release.domain.projects import get_process, process_steps
from cephalo_release.domain.variable_snapshots import take_snapshot
from cephalo_release.domain.versioning import next_release_version
from cephalo_release.events import publish

RELEASE_NUMBER = re.compile(r"^[0-9A-Za-z.+\-_]{1,100}$")


class PackageVersionSource(Protocol):
    """Where the newest allowed version of a package comes from (package-feed, later)."""

    async def newest(
        self, package_id: str, feed_id: str, rules: Sequence[Mapping[str, Any]]
    ) -> str | None: ...


def select_packages(
    steps: Sequence[dict[str, Any]], explicit: Sequence[Mapping[str, str]]
) -> tuple[list[dict[str, str]], list[tuple[str, str, dict[str, Any]]]]:
    """The explicit version of each package reference, and the references still without one."""
    wanted = {
        (str(item["action_name"]).lower(), str(item.get("package_reference", "")).lower()): item
        for item in explicit
    }
    references = package_references(steps)
    known = {(action.lower(), name.lower()) for action, name, _ in references}
    unknown = [
        f"{item['action_name']}:{item.get('package_reference', '')}"
        for key, item in wanted.items()
        if key not in known
    ]
    if unknown:
        raise Invalid(f"the process has no package reference {', '.join(unknown)}")
    selected, missing = [], []
    for action, name, reference in references:
        item = wanted.get((action.lower(), name.lower()))
        if item is None:
            missing.append((action, name, reference))
        else:
            selected.append(
                {"action_name": action, "package_reference": name, "version": item["version"]}
            )
    return selected, missing


async def _choose_missing(
    missing: Sequence[tuple[str, str, dict[str, Any]]],
    rules: Sequence[Mapping[str, Any]],
    source: PackageVersionSource | None,
) -> list[dict[str, str]]:
    chosen, unresolved = [], []
    for action, name, reference in missing:
        version = (
            await source.newest(reference["package_id"], reference.get("feed_id", "builtin"), rules)
            if source is not None
            else None
        )
        if version is None:
            unresolved.append(f'{reference["package_id"]} (step "{action}")')
        else:
            chosen.append({"action_name": action, "package_reference": name, "version": version})
    if unresolved:
        raise Invalid("choose a version for every package: " + ", ".join(unresolved) + " has none")
    return chosen


async def _release_number(
    repos: Repositories, project: Project, selected: Sequence[Mapping[str, str]]
) -> str:
    strategy = project.versioning_strategy
    donor = strategy.get("donor_package")
    if donor:
        for package in selected:
            if (
                package["action_name"].lower() == str(donor["action_name"]).lower()
                and package["package_reference"].lower()
                == str(donor.get("package_reference", "")).lower()
            ):
                return package["version"]
        raise Invalid(f'the donor package of step "{donor["action_name"]}" has no version')
    latest = await repos.releases.latest_for_project(project.id)
    return next_release_version(
        str(strategy.get("template") or ""), latest.version if latest else None, utc_now()
    )


async def create_release(
    repos: Repositories,
    space: Space,
    project: Project,
    *,
    version: str | None,
    release_notes: str,
    channel: str | None = None,
    packages: Sequence[Mapping[str, str]] = (),
    package_source: PackageVersionSource | None = None,
) -> Release:
    """Numbers are unique per project (case-insensitively); the process is copied, not linked.

    A new release has entered the first phase of its lifecycle: its automatic environments
    are deployed at once.
    """
    if project.is_disabled:
        raise Invalid(f'project "{project.name}" is disabled')
    chosen_channel = await channel_for_release(repos, project, channel)
    process = await get_process(repos, project)
    steps = process_steps(process)
    if not steps:
        raise Invalid("the project's deployment process has no steps; add one before releasing")
    selected, missing = select_packages(steps, packages)
    selected += await _choose_missing(missing, chosen_channel.rules, package_source)
    violations = rule_violations(chosen_channel.rules, selected)
    if violations:
        raise Invalid(f'channel "{chosen_channel.name}": ' + "; ".join(violations))
    number = version or await _release_number(repos, project, selected)
    if not RELEASE_NUMBER.match(number):
        raise Invalid(f"{number!r} is not a valid release number")
    if await repos.releases.find_by_version(project.id, number) is not None:
        raise Conflict(f"release {number} already exists for project {project.name}")
    release = await repos.releases.add(
        Release(
            space_id=space.id,
            project_id=project.id,
            channel_id=chosen_channel.id,
            version=number,
            release_notes=release_notes,
            process_snapshot=copy.deepcopy(steps),
            process_version=process.version,
            selected_packages=selected,
            variables_snapshot={},
        )
    )
    await take_snapshot(repos, release, project)
    publish.release_created(
        repos.session,
        str(space.id),
        ReleaseCreatedV1(release_id=str(release.id), project_id=str(project.id), version=number),
    )
    await promote(repos, release)
    return release


async def get_release(repos: Repositories, space: Space, release_id: uuid.UUID) -> Release:
    release = await repos.releases.find_in_space(space.id, release_id)
    if release is None:
        raise NotFound(f"release {release_id} was not found in this space")
    return release
