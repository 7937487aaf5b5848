"""SQL of variable sets and encrypted sensitive values."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_release.db.models import SensitiveValue, VariableSet
from cephalo_release.db.repositories import Page, SpaceScopedRepository, _escape_like, _page

LIBRARY, PROJECT = "library", "project"


class VariableSetRepository(SpaceScopedRepository[VariableSet]):
    model = VariableSet
    noun = "variable set"

    def base_statement(self) -> Select[Any]:
        return select(VariableSet).where(VariableSet.kind == LIBRARY)

    async def for_project(self, project_id: uuid.UUID, *, lock: bool = False) -> VariableSet | None:
        statement = select(VariableSet).where(VariableSet.project_id == project_id)
        if lock:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def ensure_for_project(self, space_id: uuid.UUID, project_id: uuid.UUID) -> None:
        """Create the project's (empty) set unless it exists; concurrent callers agree."""
        await self.session.execute(
            insert(VariableSet)
            .values(
                id=uuid.uuid4(),
                space_id=space_id,
                kind=PROJECT,
                project_id=project_id,
                name="Project variables",
                slug=f"project-{project_id}",
                description="",
                variables=[],
                included_set_ids=[],
                version=1,
            )
            .on_conflict_do_nothing(index_elements=[VariableSet.project_id])
        )

    async def find_many(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, VariableSet]:
        if not ids:
            return {}
        rows = await self.list(select(VariableSet).where(VariableSet.id.in_(list(ids))))
        return {row.id: row for row in rows}

    async def count_including(self, set_id: uuid.UUID) -> int:
        return await self.count(
            select(VariableSet).where(VariableSet.included_set_ids.contains([str(set_id)]))
        )

    async def page_libraries(
        self, space_id: uuid.UUID, *, skip: int, take: int, partial_name: str | None
    ) -> Page[VariableSet]:
        statement = self.base_statement().where(VariableSet.space_id == space_id)
        if partial_name:
            statement = statement.where(
                VariableSet.name.ilike(f"%{_escape_like(partial_name)}%", escape="\\")
            )
        return await _page(self, statement, (VariableSet.name_key, VariableSet.id), skip, take)


class SensitiveValueRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(self, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or replace rows (`owner_id`, `variable_id`, `key_id`, `nonce`, `ciphertext`)."""
        for start in range(0, len(rows), 1000):
            statement = insert(SensitiveValue).values(list(rows[start : start + 1000]))
            await self.session.execute(
                statement.on_conflict_do_update(
                    index_elements=[SensitiveValue.owner_id, SensitiveValue.variable_id],
                    set_={
                        "key_id": statement.excluded.key_id,
                        "nonce": statement.excluded.nonce,
                        "ciphertext": statement.excluded.ciphertext,
                        "updated_at": func.now(),
                    },
                )
            )

    async def of_owner(self, owner_id: uuid.UUID) -> Sequence[SensitiveValue]:
        result = await self.session.execute(
            select(SensitiveValue).where(SensitiveValue.owner_id == owner_id)
        )
        return result.scalars().all()

    async def ids_of_owner(self, owner_id: uuid.UUID) -> set[str]:
        result = await self.session.execute(
            select(SensitiveValue.variable_id).where(SensitiveValue.owner_id == owner_id)
        )
        return set(result.scalars().all())

    async def delete_except(self, owner_id: uuid.UUID, keep: Iterable[str]) -> None:
        await self.session.execute(
            delete(SensitiveValue).where(
                SensitiveValue.owner_id == owner_id,
                SensitiveValue.variable_id.not_in(list(keep)),
            )
        )

    async def one_per_key(self) -> Sequence[SensitiveValue]:
        result = await self.session.execute(
            select(SensitiveValue)
            .ext(distinct_on(SensitiveValue.key_id))
            .order_by(SensitiveValue.key_id, SensitiveValue.owner_id, SensitiveValue.variable_id)
        )
        return result.scalars().all()

    async def count_not_under(self, key_id: str) -> int:
        result = await self.session.execute(
            select(func.count()).select_from(SensitiveValue).where(SensitiveValue.key_id != key_id)
        )
        return int(result.scalar_one())

    async def lock_batch_not_under(self, key_id: str, limit: int) -> Sequence[SensitiveValue]:
        result = await self.session.execute(
            select(SensitiveValue)
            .where(SensitiveValue.key_id != key_id)
            .order_by(SensitiveValue.owner_id, SensitiveValue.variable_id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return result.scalars().all()
