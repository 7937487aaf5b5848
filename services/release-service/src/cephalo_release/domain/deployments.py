"""Deployments: a request to deploy a release to an environment, and its recorded outcome."""

from __future__ import annotations

import uuid

from cephalo_common.contracts import (
    DeploymentFinishedV1,
    DeploymentRequestedV1,
    ScriptActionSnapshot,
)
from cephalo_common.errors import NotFound
from cephalo_common.ids import utc_now
from cephalo_release.db.models import Deployment, Space
from cephalo_release.db.repositories import Repositories
from cephalo_release.domain.releases import get_release
from cephalo_release.events import publish

TERMINAL_STATES = frozenset({"Success", "Failed", "Canceled", "TimedOut"})


async def request_deployment(
    repos: Repositories, space: Space, *, release_id: uuid.UUID, environment_id: uuid.UUID
) -> Deployment:
    """Record the deployment and announce it; the orchestrator takes it from there.

    Lifecycle rules (which environments a release may reach now) arrive with the lifecycle
    work; until then any environment of the same space is allowed.
    """
    release = await get_release(repos, space, release_id)
    environment = await repos.environments.find_in_space(space.id, environment_id)
    if environment is None:
        raise NotFound(f"environment {environment_id} was not found in this space")
    project = await repos.projects.get(release.project_id)
    deployment = await repos.deployments.add(
        Deployment(
            space_id=space.id,
            project_id=project.id,
            release_id=release.id,
            environment_id=environment.id,
            state="Queued",
        )
    )
    publish.deployment_requested(
        repos.session,
        str(space.id),
        DeploymentRequestedV1(
            deployment_id=str(deployment.id),
            release_id=str(release.id),
            release_version=release.version,
            project_id=str(project.id),
            project_name=project.name,
            environment_id=str(environment.id),
            environment_name=environment.name,
            steps=[_snapshot(step) for step in release.process_snapshot],
        ),
    )
    return deployment


def _snapshot(step: dict[str, object]) -> ScriptActionSnapshot:
    properties = {key: step[key] for key in ("script_body", "syntax") if key in step}
    roles = step.get("target_roles") or []
    return ScriptActionSnapshot(
        id=str(step["id"]),
        name=str(step["name"]),
        action_type=str(step.get("action_type", "cephalo.script")),
        target_roles=[str(role) for role in roles] if isinstance(roles, list) else [],
        properties=properties,
    )


async def record_finished(repos: Repositories, finished: DeploymentFinishedV1) -> None:
    """Apply the orchestrator's verdict; a terminal deployment is never changed again."""
    deployment = await repos.deployments.find(uuid.UUID(finished.deployment_id))
    if deployment is None or deployment.state in TERMINAL_STATES:
        return
    deployment.state = finished.state
    deployment.task_id = uuid.UUID(finished.task_id)
    deployment.error = finished.error
    deployment.finished_at = utc_now()
    await repos.session.flush()


async def record_task_started(repos: Repositories, task_id: str, deployment_id: str) -> None:
    """The orchestrator picked the deployment up: show it as Executing with its task."""
    deployment = await repos.deployments.find(uuid.UUID(deployment_id))
    if deployment is None or deployment.state != "Queued":
        return
    deployment.state = "Executing"
    deployment.task_id = uuid.UUID(task_id)
    await repos.session.flush()


async def get_deployment(repos: Repositories, space: Space, deployment_id: uuid.UUID) -> Deployment:
    deployment = await repos.deployments.find_in_space(space.id, deployment_id)
    if deployment is None:
        raise NotFound(f"deployment {deployment_id} was not found in this space")
    return deployment
