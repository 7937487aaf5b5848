"""Project triggers (Octopus §10.1): the resource, its validation and its first run time.

What a trigger does lives in `package_triggers` (releases on package push) and
`scheduled_triggers` (deployments on a cron schedule).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from cephalo_common.errors import Conflict, Invalid, NotFound
from cephalo_release.db.models import Channel, Project, ProjectTrigger, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.channels import find_channel
from cephalo_release.domain.common import as_uuid, check_version
from cephalo_release.domain.environments import find_environment
from cephalo_release.domain.schedules import check_cron, next_fire, zone

PACKAGE_PUSH, SCHEDULE = "PackagePush", "Schedule"
DEPLOY_LATEST, CREATE_AND_DEPLOY = "DeployLatestRelease", "CreateAndDeployRelease"


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
