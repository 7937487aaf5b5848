"""All SQL of release-service. Repositories flush; the edge commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.db.repository import RepositoryBase
from cephalo_release.db.models import (
    Deployment,
    DeploymentProcess,
    Environment,
    Project,
    Release,
    Space,
)


class SpaceRepository(RepositoryBase[Space]):
    model = Space
    noun = "space"

    async def find_by_slug(self, slug: str) -> Space | None:
        result = await self.session.execute(select(Space).where(Space.slug == slug.lower()))
        return result.scalar_one_or_none()

    async def list_all(self) -> Sequence[Space]:
        return await self.list(select(Space).order_by(Space.created_at))


M = TypeVar("M")


class SpaceScopedRepository(RepositoryBase[M]):
    """A resource that lives in one space: an id from another space never resolves."""

    async def find_in_space(self, space_id: uuid.UUID, id: uuid.UUID) -> M | None:
        statement = self.base_statement().where(
            self.model.id == id, self.model.space_id == space_id
        )
        found: M | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found

    async def find_by_name(self, space_id: uuid.UUID, name: str) -> M | None:
        statement = self.base_statement().where(
            self.model.space_id == space_id, self.model.name_key == name.lower()
        )
        found: M | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found

    async def list_in_space(self, space_id: uuid.UUID) -> Sequence[M]:
        return await self.list(self.base_statement().where(self.model.space_id == space_id))


class EnvironmentRepository(SpaceScopedRepository[Environment]):
    model = Environment
    noun = "environment"

    async def list_in_space(self, space_id: uuid.UUID) -> Sequence[Environment]:
        return await self.list(
            select(Environment)
            .where(Environment.space_id == space_id)
            .order_by(Environment.sort_order, Environment.name_key)
        )

    async def next_sort_order(self, space_id: uuid.UUID) -> int:
        result = await self.session.execute(
            select(func.coalesce(func.max(Environment.sort_order), -1)).where(
                Environment.space_id == space_id
            )
        )
        return int(result.scalar_one()) + 1


class ProjectRepository(SpaceScopedRepository[Project]):
    model = Project
    noun = "project"


class DeploymentProcessRepository(RepositoryBase[DeploymentProcess]):
    model = DeploymentProcess
    noun = "deployment process"

    async def find_for_project(
        self, project_id: uuid.UUID, *, lock: bool = False
    ) -> DeploymentProcess | None:
        statement = select(DeploymentProcess).where(DeploymentProcess.project_id == project_id)
        if lock:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()


class ReleaseRepository(SpaceScopedRepository[Release]):
    model = Release
    noun = "release"

    async def find_by_version(self, project_id: uuid.UUID, version: str) -> Release | None:
        statement = select(Release).where(
            Release.project_id == project_id, Release.version_key == version.lower()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_for_project(self, project_id: uuid.UUID) -> Sequence[Release]:
        return await self.list(
            select(Release)
            .where(Release.project_id == project_id)
            .order_by(Release.created_at.desc())
        )


class DeploymentRepository(SpaceScopedRepository[Deployment]):
    model = Deployment
    noun = "deployment"

    async def list_for_release(self, release_id: uuid.UUID) -> Sequence[Deployment]:
        return await self.list(
            select(Deployment)
            .where(Deployment.release_id == release_id)
            .order_by(Deployment.created_at.desc())
        )


class Repositories:
    """Every repository of this service over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.spaces = SpaceRepository(session)
        self.environments = EnvironmentRepository(session)
        self.projects = ProjectRepository(session)
        self.processes = DeploymentProcessRepository(session)
        self.releases = ReleaseRepository(session)
        self.deployments = DeploymentRepository(session)
