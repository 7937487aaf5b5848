"""Repository base: all SQL lives in repositories; `get_*` raises, `find_*` returns None."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from cephalo_common.errors import NotFound

Model = TypeVar("Model")


class RepositoryBase(Generic[Model]):
    model: ClassVar[type[Any]]
    noun: ClassVar[str] = "resource"

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def base_statement(self) -> Select[Any]:
        return select(self.model)

    async def find(self, id: uuid.UUID) -> Model | None:
        result = await self.session.execute(self.base_statement().where(self.model.id == id))
        found: Model | None = result.scalar_one_or_none()
        return found

    async def get(self, id: uuid.UUID) -> Model:
        found = await self.find(id)
        if found is None:
            raise NotFound(f"{self.noun} {id} was not found")
        return found

    async def add(self, instance: Model) -> Model:
        self.session.add(instance)
        await self.session.flush()
        return instance

    async def list(self, statement: Select[Any] | None = None) -> Sequence[Model]:
        result = await self.session.execute(
            statement if statement is not None else self.base_statement()
        )
        rows: Sequence[Model] = result.scalars().all()
        return rows

    async def count(self, statement: Select[Any] | None = None) -> int:
        inner = (statement if statement is not None else self.base_statement()).subquery()
        result = await self.session.execute(select(func.count()).select_from(inner))
        return int(result.scalar_one())
