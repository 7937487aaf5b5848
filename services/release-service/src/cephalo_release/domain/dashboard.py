"""The dashboard: every project by environment with the release deployed there last."""

from __future__ import annotations

import uuid
from typing import Any

from cephalo_release.db.models import Space
from cephalo_release.db.repositories import Repositories


async def dashboard(
    repos: Repositories, space: Space, project_group_id: uuid.UUID | None = None
) -> dict[str, Any]:
    environments = await repos.environments.list_in_space(space.id)
    projects = await repos.projects.list_for_dashboard(space.id, project_group_id)
    latest = await repos.deployments.latest_per_project_environment(
        space.id, [project.id for project in projects]
    )
    versions = await repos.releases.versions_of({d.release_id for d in latest})
    items = [
        {
            "project_id": deployment.project_id,
            "environment_id": deployment.environment_id,
            "release_id": deployment.release_id,
            "release_version": versions.get(deployment.release_id, ""),
            "deployment_id": deployment.id,
            "state": deployment.state,
            "deployed_by": deployment.deployed_by,
            "created_at": deployment.created_at,
            "finished_at": deployment.finished_at,
        }
        for deployment in latest
    ]
    return {"environments": environments, "projects": projects, "items": items}
