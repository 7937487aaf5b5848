"""Releases: immutable snapshots of a project's process and chosen package versions.

The release number is explicit or rendered from the project's versioning strategy; the
variables are snapshotted by `variable_snapshots.take_snapshot`; package versions are chosen
by `package_versions` (explicit, or the newest the channel allows in package-feed).
"""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Mapping, Sequence

from cephalo_common.contracts import ReleaseCreatedV1
from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_common.ids import utc_now
from cephalo_release.db.models import Project, Release, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.channels import channel_for_release
from cephalo_release.domain.deployments import promote
from cephalo_release.domain.package_versions import PackageVersionSource, select_package_versions
from cephalo_release.domain.projects import get_process, process_steps
from cephalo_release.domain.variable_snapshots import take_snapshot
from cephalo_release.domain.versioning import next_release_version
from cephalo_release.events import publish

RELEASE_NUMBER = re.compile(r"^[0-9A-Za-z.+\-_]{1,100}$")


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
    selected = await select_package_versions(
        package_source, space.id, steps, packages, chosen_channel.rules
    )
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
