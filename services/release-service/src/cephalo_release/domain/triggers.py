"""Project triggers (Octopus §10.1): releases on package push, deployments on a schedule.

A package trigger creates a release in its channel when a package the process references is
pushed and the channel's rules allow the version, never twice for the same version set
(`triggered_releases` is the unique claim; the inbox drops a redelivered event). A scheduled
trigger's next run is computed from when its last run finished, so a run slower than the
schedule skips the missed fires instead of piling them up.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cephalo_common.errors import CephaloError, Conflict, Invalid, NotFound
from cephalo_common.ids import utc_now
from cephalo_common.logging import get_logger
from cephalo_common.packages import normalize_version
from cephalo_release.db.models import Channel, Project, ProjectTrigger, Release, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.channels import channel_for_release, find_channel
from cephalo_release.domain.common import as_uuid, check_version
from cephalo_release.domain.deployments import DeploymentOptions, request_deployment
from cephalo_release.domain.environments import find_environment
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
from cephalo_release.domain.schedules import check_cron, next_fire, zone

log = get_logger(__name__)

PACKAGE_PUSH, SCHEDULE = "PackagePush", "Schedule"
DEPLOY_LATEST, CREATE_AND_DEPLOY = "DeployLatestRelease", "CreateAndDeployRelease"
TRIGGERED = "Trigger"


@dataclass(frozen=True)
class TriggerFields:
    """What a person configures on a trigger (references still unresolved)."""

    name: str
    description: str
    is_disabled: bool
    kind: str
    channel: str | None
    cron: str | None
    timezone: str
    action: str | None
    source_environment: str | None
    destination_environment: str | None


def _error(field: str, message: str) -> dict[str, str]:
    return {"field": f"body.{field}", "message": message, "code": "invalid"}


def _shape_errors(fields: TriggerFields) -> list[dict[str, str]]:
    """What is missing or out of place for the trigger's kind and action."""
    if fields.kind == PACKAGE_PUSH:
        return [
            _error(name, "only a scheduled trigger has this")
            for name in ("cron", "action", "source_environment", "destination_environment")
            if getattr(fields, name) is not None
        ]
    errors = []
    try:
        check_cron(fields.cron or "")
    except ValueError as error:
        errors.append(_error("cron", str(error)))
    try:
        zone(fields.timezone)
    except ValueError as error:
        errors.append(_error("timezone", str(error)))
    if fields.action is None:
        errors.append(_error("action", f"say what to do: {DEPLOY_LATEST} or {CREATE_AND_DEPLOY}"))
    if fields.destination_environment is None:
        errors.append(_error("destination_environment", "say which environment to deploy to"))
    if fields.action == DEPLOY_LATEST and fields.source_environment is None:
        errors.append(_error("source_environment", "say whose latest release is deployed"))
    if fields.action == CREATE_AND_DEPLOY and fields.source_environment is not None:
        errors.append(_error("source_environment", "a new release has no source environment"))
    return errors


async def _references(
    repos: Repositories, space: Space, project: Project, fields: TriggerFields
) -> tuple[Channel | None, dict[str, uuid.UUID | None]]:
    """Resolve the channel and environments; an unknown one is a 422 naming the field."""
    errors = []
    channel = None
    if fields.channel is not None:
        channel = await find_channel(repos, project, fields.channel)
        if channel is None:
            errors.append(
                _error("channel", f"project {project.name} has no channel {fields.channel!r}")
            )
    environments: dict[str, uuid.UUID | None] = {}
    for name in ("source_environment", "destination_environment"):
        ref = getattr(fields, name)
        found = None if ref is None else await find_environment(repos, space, ref)
        if ref is not None and found is None:
            errors.append(_error(name, f"no environment {ref!r} in this space"))
        environments[name] = found.id if found is not None else None
    if errors:
        raise Invalid("the trigger's references are not valid", errors=errors)
    return channel, environments


async def _apply(
    repos: Repositories,
    space: Space,
    project: Project,
    trigger: ProjectTrigger,
    fields: TriggerFields,
    now: datetime,
) -> None:
    errors = _shape_errors(fields)
    if errors:
        raise Invalid("the trigger is not valid", errors=errors)
    channel, environments = await _references(repos, space, project, fields)
    other = await repos.triggers.find_in_project(project.id, None, fields.name)
    if other is not None and other.id != trigger.id:
        raise Conflict(f"project {project.name} already has a trigger named {fields.name!r}")
    trigger.name = fields.name
    trigger.description = fields.description
    trigger.is_disabled = fields.is_disabled
    trigger.kind = fields.kind
    trigger.channel_id = channel.id if channel is not None else None
    trigger.cron = fields.cron
    trigger.timezone = fields.timezone
    trigger.action = fields.action
    trigger.source_environment_id = environments["source_environment"]
    trigger.destination_environment_id = environments["destination_environment"]
    scheduled = fields.kind == SCHEDULE and not fields.is_disabled
    trigger.next_run_at = next_fire(fields.cron or "", fields.timezone, now) if scheduled else None


async def create_trigger(
    repos: Repositories, space: Space, project: Project, fields: TriggerFields, now: datetime
) -> ProjectTrigger:
    trigger = ProjectTrigger(
        space_id=space.id, project_id=project.id, version=1, last_result="", timezone="UTC"
    )
    await _apply(repos, space, project, trigger, fields, now)
    return await repos.triggers.add(trigger)


async def update_trigger(
    repos: Repositories,
    space: Space,
    project: Project,
    trigger: ProjectTrigger,
    fields: TriggerFields,
    *,
    expected_version: int | None,
    now: datetime,
) -> ProjectTrigger:
    check_version(expected_version, trigger.version, "trigger")
    await _apply(repos, space, project, trigger, fields, now)
    trigger.version += 1
    await repos.flush()
    return trigger


async def delete_trigger(
    repos: Repositories, trigger: ProjectTrigger, *, expected_version: int | None
) -> None:
    check_version(expected_version, trigger.version, "trigger", required=False)
    await repos.session.delete(trigger)
    await repos.flush()


async def get_trigger(repos: Repositories, project: Project, ref: str) -> ProjectTrigger:
    found = await repos.triggers.find_in_project(project.id, as_uuid(ref), ref)
    if found is None:
        raise NotFound(f"trigger {ref!r} was not found in project {project.name}")
    return found


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


async def _deploy_latest(repos: Repositories, space: Space, trigger: ProjectTrigger) -> str:
    source_id, destination_id = trigger.source_environment_id, trigger.destination_environment_id
    if source_id is None or destination_id is None:
        raise Invalid("the trigger has lost its environments; edit it")
    successes = await repos.deployments.successful_for(trigger.project_id, source_id)
    latest = next((d for d in successes if trigger.channel_id in (None, d.channel_id)), None)
    if latest is None:
        return "nothing to deploy: no successful deployment to the source environment yet"
    deployment = await request_deployment(
        repos,
        space,
        release_id=latest.release_id,
        environment_id=destination_id,
        options=DeploymentOptions(deployed_by=f"trigger {trigger.name}"),
        trigger=TRIGGERED,
    )
    return f"deployment {deployment.id} requested"


async def _create_and_deploy(
    repos: Repositories,
    space: Space,
    trigger: ProjectTrigger,
    source: PackageVersionSource | None,
) -> str:
    destination_id = trigger.destination_environment_id
    if destination_id is None:
        raise Invalid("the trigger has lost its environment; edit it")
    project = await repos.projects.get(trigger.project_id)
    release = await create_release(
        repos,
        space,
        project,
        version=None,
        release_notes=f"Created by scheduled trigger {trigger.name}.",
        channel=str(trigger.channel_id) if trigger.channel_id else None,
        package_source=source,
    )
    deployment = await request_deployment(
        repos,
        space,
        release_id=release.id,
        environment_id=destination_id,
        options=DeploymentOptions(deployed_by=f"trigger {trigger.name}"),
        trigger=TRIGGERED,
    )
    return f"release {release.version} created, deployment {deployment.id} requested"


async def _run(
    repos: Repositories, trigger: ProjectTrigger, source: PackageVersionSource | None
) -> str:
    space = await repos.spaces.get(trigger.space_id)
    try:
        async with repos.session.begin_nested():
            if trigger.action == DEPLOY_LATEST:
                return await _deploy_latest(repos, space, trigger)
            return await _create_and_deploy(repos, space, trigger, source)
    except CephaloError as error:
        return f"failed: {error.detail}"


async def run_due_triggers(
    repos: Repositories,
    now: datetime,
    source: PackageVersionSource | None,
    *,
    clock: Callable[[], datetime] = utc_now,
    limit: int = 20,
) -> int:
    """Run the scheduled triggers due at `now`; each next run follows its completion."""
    due = await repos.triggers.claim_due(now, limit)
    for trigger in due:
        result = await _run(repos, trigger, source)
        finished = max(clock(), now)
        trigger.last_run_at = finished
        trigger.last_result = result
        trigger.next_run_at = next_fire(trigger.cron or "", trigger.timezone, finished)
        log.info("scheduled trigger ran", trigger_id=str(trigger.id), result=result)
    await repos.flush()
    return len(due)
