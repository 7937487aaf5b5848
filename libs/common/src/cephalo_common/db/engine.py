"""Engine and session factory, configured the same way in every process."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from cephalo_common.settings import DatabaseSettings


def create_engine(settings: DatabaseSettings, application_name: str) -> AsyncEngine:
    """Lazy: nothing connects until first use, so a service starts while Postgres is down."""
    return create_async_engine(
        settings.url,
        pool_pre_ping=True,
        pool_size=settings.pool_size,
        pool_timeout=settings.connect_timeout_seconds,
        connect_args={
            "timeout": settings.connect_timeout_seconds,
            "server_settings": {"application_name": application_name},
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """`expire_on_commit=False`: objects stay readable after the edge commits.

    Each factory gets its own sync session class so session events (the outbox relay's
    wake-up after commit) attach to this factory only.
    """
    session_class = type("CephaloSession", (Session,), {})
    return async_sessionmaker(engine, expire_on_commit=False, sync_session_class=session_class)


async def ping(engine: AsyncEngine) -> None:
    """Raise unless the database answers a trivial query."""
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
