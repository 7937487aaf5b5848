"""All SQL of package-feed. Repositories flush; the edge commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.db.repository import RepositoryBase
from cephalo_feed.db.models import Package


class PackageRepository(RepositoryBase[Package]):
    model = Package
    noun = "package"

    async def find_in_space(self, space_id: uuid.UUID, id: uuid.UUID) -> Package | None:
        statement = select(Package).where(Package.id == id, Package.space_id == space_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def list_in_space(
        self,
        space_id: uuid.UUID,
        *,
        package_id: str | None = None,
        limit: int,
        offset: int,
    ) -> Sequence[Package]:
        """Newest first; `package_id` matches case-insensitively."""
        statement = select(Package).where(Package.space_id == space_id)
        if package_id is not None:
            statement = statement.where(Package.package_id_key == package_id.lower())
        return await self.list(
            statement.order_by(Package.published_at.desc(), Package.id.desc())
            .limit(limit)
            .offset(offset)
        )


class Repositories:
    """Every repository of this service over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.packages = PackageRepository(session)
