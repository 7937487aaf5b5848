"""Scheduled triggers: deploy the latest release from A to B, or create and deploy a new one.

Due triggers are claimed with SKIP LOCKED (any replica may run them). The next run is the
first fire after the run *finished*, so a run slower than the schedule skips the fires it
missed instead of piling them up.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cephalo_common.errors import CephaloError, Invalid
from cephalo_common.ids import utc_now
from cephalo_common.logging import get_logger
from cephalo_release.db.models import ProjectTrigger, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.deployments import DeploymentOptions, request_deployment
from cephalo_release.domain.package_versions import PackageVersionSource
from cephalo_release.domain.releases import create_release
from cephalo_release.domain.schedules import next_fire
from cephalo_release.domain.triggers import DEPLOY_LATEST

log = get_logger(__name__)
TRIGGERED = "Trigger"


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
