"""All SQL of release-service. Repositories flush; the edge commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, Text, and_, cast, func, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.db.repository import RepositoryBase
from cephalo_common.errors import Conflict
from cephalo_release.db.models import (
    AutomaticDeployment,
    Channel,
    Deployment,
    DeploymentProcess,
    Environment,
    Lifecycle,
    Project,
    ProjectGroup,
    ProjectTrigger,
    Release,
    Space,
    TriggeredRelease,
)

M = TypeVar("M")


@dataclass(frozen=True)
class Page(Generic[M]):
    """One page of a list and the size of the whole filtered list."""

    items: Sequence[M]
    total: int
    skip: int
    take: int


async def flush_unique(session: AsyncSession) -> None:
    """Flush; a unique key taken by a concurrent writer is a 409, not a 500."""
    try:
        await session.flush()
    except IntegrityError as error:
        if getattr(error.orig, "sqlstate", None) == "23505" or "unique" in str(error).lower():
            raise Conflict(
                "a resource with the same name, slug or number already exists"
            ) from error
        raise


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SpaceRepository(RepositoryBase[Space]):
    model = Space
    noun = "space"

    async def find_by_slug(self, slug: str) -> Space | None:
        result = await self.session.execute(select(Space).where(Space.slug == slug.lower()))
        return result.scalar_one_or_none()

    async def list_all(self) -> Sequence[Space]:
        return await self.list(select(Space).order_by(Space.created_at))

    async def page(self, *, skip: int, take: int, partial_name: str | None) -> Page[Space]:
        statement = select(Space)
        if partial_name:
            statement = statement.where(
                Space.name.ilike(f"%{_escape_like(partial_name)}%", escape="\\")
            )
        return await _page(self, statement, (Space.created_at, Space.id), skip, take)


async def _page(
    repo: RepositoryBase[Any],
    statement: Select[Any],
    order: tuple[Any, ...],
    skip: int,
    take: int,
) -> Page[Any]:
    total = await repo.count(statement)
    items = await repo.list(statement.order_by(*order).offset(skip).limit(take))
    return Page(items=items, total=total, skip=skip, take=take)


class SpaceScopedRepository(RepositoryBase[M]):
    """A resource that lives in one space: an id from another space never resolves."""

    async def add(self, instance: M) -> M:
        self.session.add(instance)
        await flush_unique(self.session)
        return instance

    async def find_in_space(
        self, space_id: uuid.UUID, id: uuid.UUID, *, lock: bool = False
    ) -> M | None:
        statement = self.base_statement().where(
            self.model.id == id, self.model.space_id == space_id
        )
        if lock:
            statement = statement.with_for_update()
        found: M | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found

    async def find_by_name(self, space_id: uuid.UUID, name: str) -> M | None:
        statement = self.base_statement().where(
            self.model.space_id == space_id, self.model.name_key == name.lower()
        )
        found: M | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found

    async def find_by_slug(self, space_id: uuid.UUID, slug: str) -> M | None:
        statement = self.base_statement().where(
            self.model.space_id == space_id, self.model.slug == slug.lower()
        )
        found: M | None = (await self.session.execute(statement)).scalar_one_or_none()
        return found

    async def slugs_in_space(self, space_id: uuid.UUID) -> set[str]:
        result = await self.session.execute(
            select(self.model.slug).where(self.model.space_id == space_id)
        )
        return set(result.scalars().all())

    async def list_in_space(self, space_id: uuid.UUID) -> Sequence[M]:
        return await self.list(self.base_statement().where(self.model.space_id == space_id))

    def ordering(self) -> tuple[Any, ...]:
        return (self.model.name_key, self.model.id)

    async def page_in_space(
        self,
        space_id: uuid.UUID,
        *,
        skip: int,
        take: int,
        partial_name: str | None = None,
        where: Sequence[Any] = (),
    ) -> Page[M]:
        statement = self.base_statement().where(self.model.space_id == space_id, *where)
        if partial_name:
            statement = statement.where(
                self.model.name.ilike(f"%{_escape_like(partial_name)}%", escape="\\")
            )
        return await _page(self, statement, self.ordering(), skip, take)


class EnvironmentRepository(SpaceScopedRepository[Environment]):
    model = Environment
    noun = "environment"

    def ordering(self) -> tuple[Any, ...]:
        return (Environment.sort_order, Environment.name_key, Environment.id)

    async def list_in_space(
        self, space_id: uuid.UUID, *, lock: bool = False
    ) -> Sequence[Environment]:
        statement = select(Environment).where(Environment.space_id == space_id)
        if lock:
            statement = statement.with_for_update()
        return await self.list(statement.order_by(*self.ordering()))

    async def next_sort_order(self, space_id: uuid.UUID) -> int:
        result = await self.session.execute(
            select(func.coalesce(func.max(Environment.sort_order), -1)).where(
                Environment.space_id == space_id
            )
        )
        return int(result.scalar_one()) + 1


class LifecycleRepository(SpaceScopedRepository[Lifecycle]):
    model = Lifecycle
    noun = "lifecycle"

    async def find_default(self, space_id: uuid.UUID) -> Lifecycle | None:
        statement = select(Lifecycle).where(Lifecycle.space_id == space_id, Lifecycle.is_default)
        return (await self.session.execute(statement)).scalar_one_or_none()


class ProjectGroupRepository(SpaceScopedRepository[ProjectGroup]):
    model = ProjectGroup
    noun = "project group"

    async def find_default(self, space_id: uuid.UUID) -> ProjectGroup | None:
        statement = select(ProjectGroup).where(
            ProjectGroup.space_id == space_id, ProjectGroup.is_default
        )
        return (await self.session.execute(statement)).scalar_one_or_none()


class ProjectRepository(SpaceScopedRepository[Project]):
    model = Project
    noun = "project"

    async def count_using_lifecycle(self, lifecycle_id: uuid.UUID) -> int:
        return await self.count(select(Project).where(Project.lifecycle_id == lifecycle_id))

    async def count_in_group(self, group_id: uuid.UUID) -> int:
        return await self.count(select(Project).where(Project.project_group_id == group_id))

    async def list_for_dashboard(
        self, space_id: uuid.UUID, group_id: uuid.UUID | None
    ) -> Sequence[Project]:
        statement = select(Project).where(Project.space_id == space_id)
        if group_id is not None:
            statement = statement.where(Project.project_group_id == group_id)
        return await self.list(statement.order_by(Project.name_key, Project.id))


class ChannelRepository(SpaceScopedRepository[Channel]):
    model = Channel
    noun = "channel"

    async def find_in_project(self, project_id: uuid.UUID, id: uuid.UUID) -> Channel | None:
        statement = select(Channel).where(Channel.project_id == project_id, Channel.id == id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_by_name_in_project(self, project_id: uuid.UUID, name: str) -> Channel | None:
        statement = select(Channel).where(
            Channel.project_id == project_id, Channel.name_key == name.lower()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_by_slug_in_project(self, project_id: uuid.UUID, slug: str) -> Channel | None:
        statement = select(Channel).where(
            Channel.project_id == project_id, Channel.slug == slug.lower()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_default(self, project_id: uuid.UUID, *, lock: bool = False) -> Channel | None:
        statement = select(Channel).where(Channel.project_id == project_id, Channel.is_default)
        if lock:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def slugs_in_project(self, project_id: uuid.UUID) -> set[str]:
        result = await self.session.execute(
            select(Channel.slug).where(Channel.project_id == project_id)
        )
        return set(result.scalars().all())

    async def page_in_project(
        self, project_id: uuid.UUID, *, skip: int, take: int, partial_name: str | None
    ) -> Page[Channel]:
        statement = select(Channel).where(Channel.project_id == project_id)
        if partial_name:
            statement = statement.where(
                Channel.name.ilike(f"%{_escape_like(partial_name)}%", escape="\\")
            )
        return await _page(self, statement, (Channel.name_key, Channel.id), skip, take)

    async def count_using_lifecycle(self, lifecycle_id: uuid.UUID) -> int:
        return await self.count(select(Channel).where(Channel.lifecycle_id == lifecycle_id))

    async def ids_in_project(self, project_id: uuid.UUID) -> set[uuid.UUID]:
        result = await self.session.execute(
            select(Channel.id).where(Channel.project_id == project_id)
        )
        return set(result.scalars().all())


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

    def ordering(self) -> tuple[Any, ...]:
        return (Release.created_at.desc(), Release.id.desc())

    async def find_by_version(self, project_id: uuid.UUID, version: str) -> Release | None:
        statement = select(Release).where(
            Release.project_id == project_id, Release.version_key == version.lower()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def latest_for_project(
        self, project_id: uuid.UUID, channel_id: uuid.UUID | None = None
    ) -> Release | None:
        statement = select(Release).where(Release.project_id == project_id)
        if channel_id is not None:
            statement = statement.where(Release.channel_id == channel_id)
        statement = statement.order_by(*self.ordering()).limit(1)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_for_project(self, project_id: uuid.UUID) -> Sequence[Release]:
        return await self.list(
            select(Release).where(Release.project_id == project_id).order_by(*self.ordering())
        )

    async def page_for_project(
        self,
        project_id: uuid.UUID,
        *,
        skip: int,
        take: int,
        partial_version: str | None,
        channel_id: uuid.UUID | None,
    ) -> Page[Release]:
        statement = select(Release).where(Release.project_id == project_id)
        if partial_version:
            statement = statement.where(
                Release.version.ilike(f"%{_escape_like(partial_version)}%", escape="\\")
            )
        if channel_id is not None:
            statement = statement.where(Release.channel_id == channel_id)
        return await _page(self, statement, self.ordering(), skip, take)

    async def list_mentioning(self, space_id: uuid.UUID, text: str) -> Sequence[Release]:
        """Releases of the space whose process snapshot mentions `text` (case-insensitive):
        a coarse filter; the caller matches exactly."""
        pattern = f"%{_escape_like(text)}%"
        return await self.list(
            select(Release)
            .where(
                Release.space_id == space_id,
                cast(Release.process_snapshot, Text).ilike(pattern, escape="\\"),
            )
            .order_by(Release.created_at, Release.id)
        )

    async def versions_of(self, ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
        """Versions by release id, without loading the releases' snapshots (the dashboard
        shows a hundred releases and needs nothing else of them)."""
        if not ids:
            return {}
        rows = await self.session.execute(
            select(Release.id, Release.version).where(Release.id.in_(ids))
        )
        return {release_id: version for release_id, version in rows}

    async def find_many(self, ids: set[uuid.UUID]) -> Sequence[Release]:
        if not ids:
            return []
        return await self.list(select(Release).where(Release.id.in_(ids)))

    async def lock(self, release_id: uuid.UUID) -> Release | None:
        statement = select(Release).where(Release.id == release_id).with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()


@dataclass(frozen=True)
class DeploymentFilter:
    project_id: uuid.UUID | None = None
    environment_id: uuid.UUID | None = None
    release_id: uuid.UUID | None = None
    state: str | None = None


class DeploymentRepository(SpaceScopedRepository[Deployment]):
    model = Deployment
    noun = "deployment"

    def ordering(self) -> tuple[Any, ...]:
        return (Deployment.created_at.desc(), Deployment.id.desc())

    async def find_locked(self, id: uuid.UUID) -> Deployment | None:
        statement = select(Deployment).where(Deployment.id == id).with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_for_release(self, release_id: uuid.UUID) -> Sequence[Deployment]:
        """Oldest first: the order progression reads history in."""
        return await self.list(
            select(Deployment)
            .where(Deployment.release_id == release_id)
            .order_by(Deployment.created_at, Deployment.id)
        )

    async def page_filtered(
        self, space_id: uuid.UUID, *, skip: int, take: int, filter: DeploymentFilter
    ) -> Page[Deployment]:
        conditions = [
            column == value
            for column, value in (
                (Deployment.project_id, filter.project_id),
                (Deployment.environment_id, filter.environment_id),
                (Deployment.release_id, filter.release_id),
                (Deployment.state, filter.state),
            )
            if value is not None
        ]
        return await self.page_in_space(space_id, skip=skip, take=take, where=conditions)

    async def successful_for(
        self, project_id: uuid.UUID, environment_id: uuid.UUID
    ) -> Sequence[Deployment]:
        """Successful deployments of a project to an environment, newest first."""
        return await self.list(
            select(Deployment)
            .where(
                Deployment.project_id == project_id,
                Deployment.environment_id == environment_id,
                Deployment.state == "Success",
            )
            .order_by(*self.ordering())
        )

    async def latest_per_project_environment(
        self, space_id: uuid.UUID, project_ids: Sequence[uuid.UUID]
    ) -> Sequence[Deployment]:
        if not project_ids:
            return []
        statement = (
            select(Deployment)
            .where(Deployment.space_id == space_id, Deployment.project_id.in_(project_ids))
            .where(Deployment.state != "Scheduled")
            .ext(distinct_on(Deployment.project_id, Deployment.environment_id))
            .order_by(
                Deployment.project_id,
                Deployment.environment_id,
                Deployment.created_at.desc(),
                Deployment.id.desc(),
            )
        )
        return await self.list(statement)

    async def claim_due(self, now: datetime, limit: int) -> Sequence[Deployment]:
        """Scheduled deployments whose time has come, locked so one replica takes each."""
        statement = (
            select(Deployment)
            .where(and_(Deployment.state == "Scheduled", Deployment.queue_time <= now))
            .order_by(Deployment.queue_time)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self.list(statement)


class AutomaticDeploymentRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(
        self, release_id: uuid.UUID, environment_id: uuid.UUID, deployment_id: uuid.UUID
    ) -> bool:
        """Record the automatic deployment; False when one was already recorded."""
        statement = (
            insert(AutomaticDeployment)
            .values(
                release_id=release_id, environment_id=environment_id, deployment_id=deployment_id
            )
            .on_conflict_do_nothing()
            .returning(AutomaticDeployment.release_id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def environments_for(self, release_id: uuid.UUID) -> set[uuid.UUID]:
        result = await self.session.execute(
            select(AutomaticDeployment.environment_id).where(
                AutomaticDeployment.release_id == release_id
            )
        )
        return set(result.scalars().all())


class ProjectTriggerRepository(SpaceScopedRepository[ProjectTrigger]):
    model = ProjectTrigger
    noun = "trigger"

    async def find_in_project(
        self, project_id: uuid.UUID, ref: uuid.UUID | None, name: str
    ) -> ProjectTrigger | None:
        statement = select(ProjectTrigger).where(ProjectTrigger.project_id == project_id)
        if ref is not None:
            found = await self.session.execute(statement.where(ProjectTrigger.id == ref))
            by_id: ProjectTrigger | None = found.scalar_one_or_none()
            if by_id is not None:
                return by_id
        by_name = statement.where(ProjectTrigger.name_key == name.lower())
        return (await self.session.execute(by_name)).scalar_one_or_none()

    async def page_in_project(
        self, project_id: uuid.UUID, *, skip: int, take: int, partial_name: str | None
    ) -> Page[ProjectTrigger]:
        statement = select(ProjectTrigger).where(ProjectTrigger.project_id == project_id)
        if partial_name:
            statement = statement.where(
                ProjectTrigger.name.ilike(f"%{_escape_like(partial_name)}%", escape="\\")
            )
        return await _page(
            self, statement, (ProjectTrigger.name_key, ProjectTrigger.id), skip, take
        )

    async def enabled_of_kind(self, space_id: uuid.UUID, kind: str) -> Sequence[ProjectTrigger]:
        return await self.list(
            select(ProjectTrigger)
            .where(
                ProjectTrigger.space_id == space_id,
                ProjectTrigger.kind == kind,
                ProjectTrigger.is_disabled.is_(False),
            )
            .order_by(ProjectTrigger.created_at, ProjectTrigger.id)
        )

    async def claim_due(self, now: datetime, limit: int) -> Sequence[ProjectTrigger]:
        """Scheduled triggers whose time has come, locked so one replica runs each."""
        statement = (
            select(ProjectTrigger)
            .where(
                ProjectTrigger.kind == "Schedule",
                ProjectTrigger.is_disabled.is_(False),
                ProjectTrigger.next_run_at <= now,
            )
            .order_by(ProjectTrigger.next_run_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self.list(statement)


class TriggeredReleaseRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def claim(self, channel_id: uuid.UUID, version_set: str) -> bool:
        """Record that a trigger releases this version set; False when one already did."""
        statement = (
            insert(TriggeredRelease)
            .values(channel_id=channel_id, version_set=version_set)
            .on_conflict_do_nothing()
            .returning(TriggeredRelease.channel_id)
        )
        return (await self.session.execute(statement)).first() is not None

    async def record_release(
        self, channel_id: uuid.UUID, version_set: str, release_id: uuid.UUID
    ) -> None:
        row = await self.session.get(TriggeredRelease, (channel_id, version_set))
        if row is not None:
            row.release_id = release_id
            await self.session.flush()


class Repositories:
    """Every repository of this service over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.spaces = SpaceRepository(session)
        self.environments = EnvironmentRepository(session)
        self.lifecycles = LifecycleRepository(session)
        self.project_groups = ProjectGroupRepository(session)
        self.projects = ProjectRepository(session)
        self.channels = ChannelRepository(session)
        self.processes = DeploymentProcessRepository(session)
        self.releases = ReleaseRepository(session)
        self.deployments = DeploymentRepository(session)
        self.automatic = AutomaticDeploymentRepository(session)
        self.triggers = ProjectTriggerRepository(session)
        self.triggered_releases = TriggeredReleaseRepository(session)

    async def flush(self) -> None:
        await flush_unique(self.session)
