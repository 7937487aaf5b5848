from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cephalo_common.db.base import IdMixin, TimestampMixin, service_metadata
from cephalo_common.db.engine import create_engine, create_sessionmaker
from cephalo_common.db.inbox import InboxMixin
from cephalo_common.db.outbox import OutboxMixin
from cephalo_common.embedded import EmbeddedNats, free_port
from cephalo_common.settings import DatabaseSettings


class Base(DeclarativeBase):
    metadata = service_metadata("common_test")


class Widget(IdMixin, TimestampMixin, Base):
    __tablename__ = "widgets"
    name: Mapped[str] = mapped_column(String(100))


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    from sqlalchemy import text

    engine = create_engine(DatabaseSettings(url=database_url), application_name="common-tests")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE SCHEMA IF NOT EXISTS common_test"))
        await connection.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A NATS server of this test's own, so it can be stopped without harming others."""
    tmp_path.chmod(0o755)
    server = EmbeddedNats(tmp_path / "nats", free_port())
    server.start()
    yield server
    server.stop()
