from __future__ import annotations

import uuid
from datetime import datetime

from cephalo_release.schemas.common import ReadModel


class DashboardEnvironment(ReadModel):
    id: uuid.UUID
    name: str
    sort_order: int


class DashboardProject(ReadModel):
    id: uuid.UUID
    name: str
    slug: str
    project_group_id: uuid.UUID
    is_disabled: bool


class DashboardItem(ReadModel):
    """The latest deployment of one project to one environment."""

    project_id: uuid.UUID
    environment_id: uuid.UUID
    release_id: uuid.UUID
    release_version: str
    deployment_id: uuid.UUID
    state: str
    deployed_by: str | None
    created_at: datetime
    finished_at: datetime | None


class Dashboard(ReadModel):
    environments: list[DashboardEnvironment]
    projects: list[DashboardProject]
    items: list[DashboardItem]
