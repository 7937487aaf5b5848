"""Deployments: a request to deploy a release to an environment, and its recorded outcome.

A deployment is checked against the lifecycle, recorded, and announced with
`deployment.requested` in the same transaction; a scheduled one is announced when its time
comes. When one succeeds, the release may have entered a new phase: its automatic
environments are deployed then, at most once per release and environment.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cephalo_common.contracts import (
    ConnectivityPolicyV1,
    DeploymentFinishedV1,
    DeploymentOptionsV1,
    DeploymentRequestedV1,
    ScriptActionSnapshot,
)
from cephalo_common.errors import Invalid, NotFound
from cephalo_common.ids import utc_now
from cephalo_release.db.models import Deployment, Environment, Lifecycle, Project, Release, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.lifecycles import lifecycle_of, lifecycle_spec
from cephalo_release.domain.process import canonical_step, deployment_actions, resolve_skips
from cephalo_release.domain.progression import (
    DeploymentRecord,
    EnvironmentRef,
    Progression,
    automatic_deployments,
    progression,
)
from cephalo_release.domain.variable_snapshots import (
    check_prompted,
    deployment_values,
    load_prompted,
    snapshot_entries,
    store_prompted,
)
from cephalo_release.events import publish

TERMINAL_STATES = frozenset({"Success", "Failed", "Canceled", "TimedOut"})
MAX_SCHEDULE_AHEAD = timedelta(days=30)
MANUAL, AUTOMATIC, REDEPLOY, ROLLBACK = "Manual", "AutomaticPromotion", "Redeploy", "Rollback"


@dataclass(frozen=True)
class DeploymentOptions:
    """What the person deploying may choose (Octopus §4.3)."""

    specific_machine_ids: Sequence[str] = ()
    excluded_machine_ids: Sequence[str] = ()
    skip_actions: Sequence[str] = ()
    use_guided_failure: bool | None = None
    queue_time: datetime | None = None
    queue_time_expiry: datetime | None = None
    comments: str = ""
    prompted_values: Mapping[str, str] = field(default_factory=dict)
    deployed_by: str | None = None


def guided_failure(override: bool | None, project_mode: str, environment_default: bool) -> bool:
    """Deployment override, else the project's mode, else the environment's default (§5.5)."""
    if override is not None:
        return override
    if project_mode == "On":
        return True
    if project_mode == "Off":
        return False
    return environment_default


def _check_schedule(options: DeploymentOptions, now: datetime) -> bool:
    """True when the deployment waits for its queue time."""
    if options.queue_time_expiry is not None and options.queue_time_expiry <= now:
        raise Invalid("queue_time_expiry is already in the past")
    if options.queue_time is None:
        return False
    if options.queue_time > now + MAX_SCHEDULE_AHEAD:
        raise Invalid("a deployment can be scheduled at most 30 days ahead")
    return options.queue_time > now


async def release_progression(
    repos: Repositories, release: Release
) -> tuple[Lifecycle, Progression]:
    """The release's lifecycle (its channel's, else its project's) and where it stands."""
    project = await repos.projects.get(release.project_id)
    lifecycle = await lifecycle_of(repos, project, release.channel_id)
    environments = [
        EnvironmentRef(environment.id, environment.name)
        for environment in await repos.environments.list_in_space(release.space_id)
    ]
    history = [
        DeploymentRecord(deployment.environment_id, deployment.state)
        for deployment in await repos.deployments.list_for_release(release.id)
    ]
    return lifecycle, progression(lifecycle_spec(lifecycle), environments, history)


def _actions(
    release: Release, environment_id: uuid.UUID, skipped: Sequence[str]
) -> list[dict[str, Any]]:
    steps = [canonical_step(step) for step in release.process_snapshot]
    versions = {
        (str(package["action_name"]), str(package.get("package_reference", ""))): str(
            package["version"]
        )
        for package in release.selected_packages
    }
    return deployment_actions(
        steps,
        environment_id=environment_id,
        channel_id=release.channel_id,
        skipped=skipped,
        package_versions=versions,
    )


async def request_deployment(
    repos: Repositories,
    space: Space,
    *,
    release_id: uuid.UUID,
    environment_id: uuid.UUID,
    options: DeploymentOptions | None = None,
    trigger: str = MANUAL,
    redeploy_of_id: uuid.UUID | None = None,
) -> Deployment:
    """Check the lifecycle and the options, record the deployment and announce it."""
    release = await repos.releases.find_in_space(space.id, release_id)
    if release is None:
        raise NotFound(f"release {release_id} was not found in this space")
    environment = await repos.environments.find_in_space(space.id, environment_id)
    if environment is None:
        raise NotFound(f"environment {environment_id} was not found in this space")
    project = await repos.projects.get(release.project_id)
    if project.is_disabled:
        raise Invalid(f'Cannot deploy: project "{project.name}" is disabled')
    _, progress = await release_progression(repos, release)
    reason = progress.blocking_reason(EnvironmentRef(environment.id, environment.name))
    if reason is not None:
        raise Invalid(reason)
    return await _record(
        repos,
        release,
        project,
        environment,
        options or DeploymentOptions(),
        trigger=trigger,
        redeploy_of_id=redeploy_of_id,
    )


async def _record(
    repos: Repositories,
    release: Release,
    project: Project,
    environment: Environment,
    options: DeploymentOptions,
    *,
    trigger: str,
    redeploy_of_id: uuid.UUID | None = None,
    announce: bool = True,
) -> Deployment:
    steps = [canonical_step(step) for step in release.process_snapshot]
    skipped = resolve_skips(steps, options.skip_actions)
    if not _actions(release, environment.id, skipped):
        raise Invalid(
            f'nothing to deploy to "{environment.name}": every step is disabled, skipped or '
            "filtered out for this environment and channel"
        )
    prompted = check_prompted(snapshot_entries(release), options.prompted_values)
    now = utc_now()
    scheduled = _check_schedule(options, now)
    deployment = await repos.deployments.add(
        Deployment(
            space_id=release.space_id,
            project_id=project.id,
            release_id=release.id,
            environment_id=environment.id,
            channel_id=release.channel_id,
            state="Scheduled" if scheduled else "Queued",
            trigger=trigger,
            deployed_by=options.deployed_by,
            comments=options.comments,
            specific_machine_ids=[str(id) for id in options.specific_machine_ids],
            excluded_machine_ids=[str(id) for id in options.excluded_machine_ids],
            skip_actions=skipped,
            guided_failure_override=options.use_guided_failure,
            use_guided_failure=guided_failure(
                options.use_guided_failure,
                project.default_guided_failure_mode,
                environment.use_guided_failure,
            ),
            queue_time=options.queue_time,
            queue_time_expiry=options.queue_time_expiry,
            redeploy_of_id=redeploy_of_id,
        )
    )
    await store_prompted(repos, deployment.id, prompted)
    if announce and not scheduled:
        await _announce(repos, deployment, release, project, environment, now)
    return deployment


def run_options(deployment: Deployment, project: Project) -> DeploymentOptionsV1:
    """The choices of the deployment and the project settings that shape its run."""
    policy = project.connectivity_policy or {}
    return DeploymentOptionsV1(
        specific_machine_ids=list(deployment.specific_machine_ids),
        excluded_machine_ids=list(deployment.excluded_machine_ids),
        skip_action_ids=list(deployment.skip_actions),
        use_guided_failure=deployment.use_guided_failure,
        connectivity=ConnectivityPolicyV1(
            skip_machine_behavior=(
                "SkipUnavailableMachines" if policy.get("skip_unavailable_targets") else "None"
            ),
            exclude_unhealthy_targets=bool(policy.get("exclude_unhealthy_targets")),
            allow_deployments_to_no_targets=bool(policy.get("allow_deployments_to_no_targets")),
        ),
    )


async def _announce(
    repos: Repositories,
    deployment: Deployment,
    release: Release,
    project: Project,
    environment: Environment,
    now: datetime,
) -> None:
    """Emit `deployment.requested` in the caller's transaction (outbox)."""
    actions = _actions(release, environment.id, deployment.skip_actions)
    channel = await repos.channels.find(release.channel_id)
    deployment.requested_at = now
    values, prompted = await deployment_values(repos, release, deployment.id)
    options = run_options(deployment, project).model_copy(update={"prompted_values": prompted})
    event = DeploymentRequestedV1(
        deployment_id=str(deployment.id),
        release_id=str(release.id),
        release_version=release.version,
        project_id=str(project.id),
        project_name=project.name,
        environment_id=str(environment.id),
        environment_name=environment.name,
        steps=[ScriptActionSnapshot.model_validate(action) for action in actions],
        space_id=str(release.space_id),
        channel_id=str(release.channel_id),
        channel_name=channel.name if channel is not None else None,
        deployed_by=deployment.deployed_by,
        options=options,
        variable_values=values,
    )
    publish.deployment_requested(repos.session, str(release.space_id), event)


async def promote(repos: Repositories, release: Release) -> list[Deployment]:
    """Deploy the release to the automatic environments of every phase it has reached.

    The release row is locked so concurrent successes of one release are judged one after
    the other; `automatic_deployments` remembers each (release, environment) for ever, so a
    duplicate or re-published `deployment.finished` never deploys twice.
    """
    await repos.releases.lock(release.id)
    _, progress = await release_progression(repos, release)
    already = await repos.automatic.environments_for(release.id)
    targets = automatic_deployments(progress, already)
    if not targets:
        return []
    project = await repos.projects.get(release.project_id)
    if project.is_disabled:
        return []
    created = []
    for environment_id in targets:
        environment = await repos.environments.get(environment_id)
        try:
            deployment = await _record(
                repos,
                release,
                project,
                environment,
                DeploymentOptions(),
                trigger=AUTOMATIC,
                announce=False,
            )
        except Invalid:
            continue
        if not await repos.automatic.claim(release.id, environment_id, deployment.id):
            await repos.session.delete(deployment)
            await repos.flush()
            continue
        await _announce(repos, deployment, release, project, environment, utc_now())
        created.append(deployment)
    return created


async def record_finished(repos: Repositories, finished: DeploymentFinishedV1) -> None:
    """Apply the orchestrator's verdict once; a success may promote the release."""
    deployment = await repos.deployments.find_locked(uuid.UUID(finished.deployment_id))
    if deployment is None or deployment.state in TERMINAL_STATES:
        return
    deployment.state = finished.state
    deployment.task_id = uuid.UUID(finished.task_id)
    deployment.error = finished.error
    deployment.finished_at = utc_now()
    await repos.flush()
    if deployment.state == "Success":
        await promote(repos, await repos.releases.get(deployment.release_id))


async def record_task_started(repos: Repositories, task_id: str, deployment_id: str) -> None:
    """The orchestrator picked the deployment up: show it as Executing with its task."""
    deployment = await repos.deployments.find_locked(uuid.UUID(deployment_id))
    if deployment is None or deployment.state != "Queued":
        return
    deployment.state = "Executing"
    deployment.task_id = uuid.UUID(task_id)
    await repos.flush()


async def get_deployment(repos: Repositories, space: Space, deployment_id: uuid.UUID) -> Deployment:
    deployment = await repos.deployments.find_in_space(space.id, deployment_id)
    if deployment is None:
        raise NotFound(f"deployment {deployment_id} was not found in this space")
    return deployment


async def redeploy(
    repos: Repositories,
    space: Space,
    previous: Deployment,
    *,
    queue_time: datetime | None = None,
    queue_time_expiry: datetime | None = None,
    comments: str = "",
    deployed_by: str | None = None,
) -> Deployment:
    """The same release to the same environment, with the same choices, once more."""
    options = DeploymentOptions(
        specific_machine_ids=previous.specific_machine_ids,
        excluded_machine_ids=previous.excluded_machine_ids,
        skip_actions=previous.skip_actions,
        use_guided_failure=previous.guided_failure_override,
        queue_time=queue_time,
        queue_time_expiry=queue_time_expiry,
        comments=comments,
        prompted_values=await load_prompted(repos, previous.id),
        deployed_by=deployed_by,
    )
    return await request_deployment(
        repos,
        space,
        release_id=previous.release_id,
        environment_id=previous.environment_id,
        options=options,
        trigger=REDEPLOY,
        redeploy_of_id=previous.id,
    )


async def rollback(
    repos: Repositories,
    space: Space,
    project: Project,
    environment: Environment,
    options: DeploymentOptions,
) -> Deployment:
    """Deploy the release that succeeded in the environment before the current one."""
    successes = await repos.deployments.successful_for(project.id, environment.id)
    if not successes:
        raise Invalid(
            f'project "{project.name}" has no successful deployment to "{environment.name}"'
        )
    current = successes[0].release_id
    previous = next((d.release_id for d in successes if d.release_id != current), None)
    if previous is None:
        raise Invalid(
            f'no earlier successful release of "{project.name}" in "{environment.name}" '
            "to roll back to"
        )
    return await request_deployment(
        repos,
        space,
        release_id=previous,
        environment_id=environment.id,
        options=options,
        trigger=ROLLBACK,
    )


async def dispatch_due(repos: Repositories, now: datetime, limit: int = 100) -> int:
    """Announce scheduled deployments whose time has come; cancel those past their expiry."""
    due = await repos.deployments.claim_due(now, limit)
    for deployment in due:
        if deployment.queue_time_expiry is not None and deployment.queue_time_expiry < now:
            deployment.state = "Canceled"
            deployment.error = (
                f"did not start before its expiry at {deployment.queue_time_expiry.isoformat()}"
            )
            deployment.finished_at = now
            continue
        release = await repos.releases.get(deployment.release_id)
        project = await repos.projects.get(deployment.project_id)
        environment = await repos.environments.get(deployment.environment_id)
        deployment.state = "Queued"
        await _announce(repos, deployment, release, project, environment, now)
    await repos.flush()
    return len(due)
