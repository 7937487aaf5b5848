"""All SQL of package-feed. Repositories flush; the edge commits."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, exists, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from cephalo_common.db.repository import RepositoryBase
from cephalo_common.ids import uuid7
from cephalo_feed.db.models import Blob, Package


def _like_escaped(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class PackageRepository(RepositoryBase[Package]):
    model = Package
    noun = "package"

    async def find_in_space(self, space_id: uuid.UUID, id: uuid.UUID) -> Package | None:
        statement = select(Package).where(Package.id == id, Package.space_id == space_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def find_version(
        self, space_id: uuid.UUID, package_id_key: str, version_key: str
    ) -> Package | None:
        statement = select(Package).where(
            Package.space_id == space_id,
            Package.package_id_key == package_id_key,
            Package.version_key == version_key,
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def lock_identity(
        self, space_id: uuid.UUID, package_id_key: str, version_key: str
    ) -> None:
        """Serialise pushes and deletes of one version across every replica (until commit)."""
        await self.session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('feed.package'), hashtext(:identity))"),
            {"identity": f"{space_id}/{package_id_key}/{version_key}"},
        )

    async def list_in_space(
        self,
        space_id: uuid.UUID,
        *,
        package_id: str | None = None,
        filter: str | None = None,
        limit: int,
        offset: int,
    ) -> Sequence[Package]:
        """Newest published first; `package_id` matches case-insensitively, `filter` is a
        case-insensitive substring of the id."""
        statement = select(Package).where(Package.space_id == space_id)
        if package_id is not None:
            statement = statement.where(Package.package_id_key == package_id.lower())
        if filter:
            statement = statement.where(
                Package.package_id_key.like(f"%{_like_escaped(filter.lower())}%", escape="\\")
            )
        return await self.list(
            statement.order_by(Package.published_at.desc(), Package.id.desc())
            .limit(limit)
            .offset(offset)
        )

    async def versions_of(self, space_id: uuid.UUID, package_id_key: str) -> Sequence[Package]:
        """Every version of one package, without release notes (the caller orders them
        semantically; a package may have thousands of versions)."""
        statement = (
            select(Package)
            .where(Package.space_id == space_id, Package.package_id_key == package_id_key)
            .options(defer(Package.release_notes, raiseload=True))
        )
        return await self.list(statement)

    async def package_ids(
        self, space_id: uuid.UUID, *, filter: str | None, limit: int, offset: int
    ) -> Sequence[str]:
        """Distinct package id keys in the space, alphabetically."""
        statement = (
            select(Package.package_id_key)
            .where(Package.space_id == space_id)
            .group_by(Package.package_id_key)
            .order_by(Package.package_id_key)
            .limit(limit)
            .offset(offset)
        )
        if filter:
            statement = statement.where(
                Package.package_id_key.like(f"%{_like_escaped(filter.lower())}%", escape="\\")
            )
        return list((await self.session.execute(statement)).scalars().all())

    async def versions_of_many(
        self, space_id: uuid.UUID, package_id_keys: Sequence[str]
    ) -> Sequence[Package]:
        statement = (
            select(Package)
            .where(Package.space_id == space_id, Package.package_id_key.in_(package_id_keys))
            .options(defer(Package.release_notes, raiseload=True))
        )
        return await self.list(statement)

    async def lock_expired(
        self,
        published_before: datetime,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Package]:
        """Versions published before the cutoff, oldest first, locked; rows another replica
        holds are skipped, so concurrent retention runs never delete a row twice."""
        statement = select(Package).where(Package.published_at < published_before)
        if after is not None:
            statement = statement.where(
                (Package.published_at > after[0])
                | ((Package.published_at == after[0]) & (Package.id > after[1]))
            )
        statement = (
            statement.order_by(Package.published_at, Package.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
            .options(defer(Package.release_notes, raiseload=True))
        )
        return await self.list(statement)

    async def references_blob(self, sha256: str) -> bool:
        statement = select(exists().where(Package.sha256 == sha256))
        return bool((await self.session.execute(statement)).scalar_one())

    async def remove(self, package: Package) -> None:
        await self.session.execute(delete(Package).where(Package.id == package.id))


class BlobRepository(RepositoryBase[Blob]):
    model = Blob
    noun = "blob"

    async def touch(self, sha256: str, size_bytes: int, storage_key: str) -> None:
        """Insert the blob row or refresh its `updated_at`; the row stays locked until this
        transaction ends, which keeps the garbage collector off it."""
        statement = insert(Blob).values(
            id=uuid7(), sha256=sha256, size_bytes=size_bytes, storage_key=storage_key
        )
        statement = statement.on_conflict_do_update(
            index_elements=[Blob.sha256], set_={"updated_at": func.now()}
        )
        await self.session.execute(statement)

    async def lock_unreferenced(
        self, *, touched_before: datetime, sha256s: Sequence[str] | None, limit: int
    ) -> Sequence[Blob]:
        statement = (
            select(Blob)
            .where(
                Blob.updated_at < touched_before,
                ~exists().where(Package.sha256 == Blob.sha256),
            )
            .order_by(Blob.updated_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if sha256s is not None:
            statement = statement.where(Blob.sha256.in_(sha256s))
        return await self.list(statement)

    async def remove(self, blob: Blob) -> None:
        await self.session.execute(delete(Blob).where(Blob.id == blob.id))
        await self.session.flush()


class Repositories:
    """Every repository of this service over one session (one unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.packages = PackageRepository(session)
        self.blobs = BlobRepository(session)
