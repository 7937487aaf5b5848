"""Inbox: a consumer applies each event once, for ever (JetStream de-duplicates for 2 minutes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from cephalo_common.ids import utc_now
from cephalo_common.messaging.broker import Handler
from cephalo_common.messaging.envelope import Envelope

SessionHandler = Callable[[AsyncSession, Envelope], Awaitable[None]]


class InboxMixin:
    """Columns of a service's `inbox` table: one row per (consumer, event id) applied."""

    consumer: Mapped[str] = mapped_column(String(200), primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utc_now)


async def first_delivery(
    session: AsyncSession, inbox_model: type[InboxMixin], consumer: str, message_id: str
) -> bool:
    """Record the delivery; False when this consumer already applied this event."""
    statement = (
        insert(inbox_model)
        .values(consumer=consumer, message_id=message_id, received_at=utc_now())
        .on_conflict_do_nothing()
        .returning(inbox_model.message_id)
    )
    return (await session.execute(statement)).first() is not None


def idempotent_handler(
    sessionmaker: async_sessionmaker[AsyncSession],
    inbox_model: type[InboxMixin],
    consumer: str,
    handle: SessionHandler,
) -> Handler:
    """Wrap `handle` in a unit of work that skips events this consumer already applied."""

    async def handler(envelope: Envelope) -> None:
        async with sessionmaker() as session, session.begin():
            if await first_delivery(session, inbox_model, consumer, envelope.id):
                await handle(session, envelope)

    return handler
