"""The transactional outbox and inbox against real Postgres and a real NATS JetStream."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import nats
import pytest
from pydantic import BaseModel
from sqlalchemy import String, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cephalo_common.contracts import DEPLOYMENT_REQUESTED, RELEASE_CREATED
from cephalo_common.db.base import IdMixin, TimestampMixin, service_metadata
from cephalo_common.db.engine import create_engine, create_sessionmaker
from cephalo_common.db.inbox import InboxMixin, idempotent_handler
from cephalo_common.db.outbox import REDACTED, OutboxMixin, OutboxRelay, emit_event
from cephalo_common.db.session import unit_of_work
from cephalo_common.embedded import EmbeddedNats
from cephalo_common.messaging.envelope import Envelope, new_envelope
from cephalo_common.messaging.memory import InMemoryBroker
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.messaging.streams import EVT_RELEASE
from cephalo_common.settings import DatabaseSettings, NatsSettings


class Base(DeclarativeBase):
    metadata = service_metadata("common_test")


class Widget(IdMixin, TimestampMixin, Base):
    __tablename__ = "widgets"
    name: Mapped[str] = mapped_column(String(100))


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Inbox(InboxMixin, Base):
    __tablename__ = "inbox"


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseSettings(url=database_url), application_name="common-tests")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE SCHEMA IF NOT EXISTS common_test"))
        await connection.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


class Created(BaseModel):
    widget: str


@contextlib.asynccontextmanager
async def broker_for(url: str) -> AsyncIterator[NatsBroker]:
    broker = NatsBroker(NatsSettings(url=url), name="outbox-test")
    await broker.start()
    try:
        yield broker
    finally:
        await broker.close()


async def stream_subjects_for(url: str, space: str) -> list[Envelope]:
    """Every event of `space` currently in the release stream."""
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        sub = await js.subscribe(RELEASE_CREATED.subject(space), ordered_consumer=True)
        found: list[Envelope] = []
        with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
            while True:
                message = await sub.next_msg(timeout=0.5)
                found.append(Envelope.from_bytes(message.data))
        return found
    finally:
        await client.close()


def write_widget(session: AsyncSession, space: str, name: str) -> Envelope:
    session.add(Widget(name=name))
    return emit_event(
        session, Outbox, RELEASE_CREATED, source="test", space=space, data=Created(widget=name)
    )


async def test_a_rolled_back_transaction_publishes_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], nats_url: str
) -> None:
    space = f"space-{uuid.uuid4().hex[:8]}"
    with pytest.raises(RuntimeError):
        async with unit_of_work(sessionmaker) as session:
            write_widget(session, space, "rolled-back")
            raise RuntimeError("the handler failed after writing")
    async with unit_of_work(sessionmaker) as session:
        write_widget(session, space, "committed")
    async with broker_for(nats_url) as broker:
        await broker.wait_connected(10)
        relay = OutboxRelay(sessionmaker, Outbox, broker)
        while await relay.relay_once():
            pass
    published = await stream_subjects_for(nats_url, space)
    assert [event.data["widget"] for event in published] == ["committed"]
    async with sessionmaker() as session:
        names = (
            await session.execute(select(Widget.name).where(Widget.name == "rolled-back"))
        ).all()
    assert names == []


async def test_an_event_written_while_nats_is_down_is_delivered_after_it_returns(
    sessionmaker: async_sessionmaker[AsyncSession], own_nats: EmbeddedNats
) -> None:
    space = f"space-{uuid.uuid4().hex[:8]}"
    async with broker_for(own_nats.url) as broker:
        await broker.wait_connected(10)
        relay = OutboxRelay(sessionmaker, Outbox, broker, poll_seconds=0.1)
        relay_task = asyncio.create_task(relay.run())
        own_nats.stop()
        async with unit_of_work(sessionmaker) as session:
            envelope = write_widget(session, space, "while-down")
        await asyncio.sleep(1.0)
        async with sessionmaker() as session:
            row = await session.get(Outbox, uuid.UUID(envelope.id))
            assert row is not None and row.published_at is None
        own_nats.start()
        async with asyncio.timeout(30):
            while True:
                async with sessionmaker() as session:
                    row = await session.get(Outbox, uuid.UUID(envelope.id))
                    if row is not None and row.published_at is not None:
                        break
                await asyncio.sleep(0.2)
        relay_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await relay_task
    published = await stream_subjects_for(own_nats.url, space)
    assert [event.id for event in published] == [envelope.id]


async def test_a_duplicate_delivery_is_applied_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    applied: list[str] = []

    async def handle(session: AsyncSession, envelope: Envelope) -> None:
        session.add(Widget(name=envelope.data["widget"]))
        applied.append(envelope.id)

    handler = idempotent_handler(sessionmaker, Inbox, "common-tests--widgets", handle)
    name = f"dup-{uuid.uuid4().hex[:8]}"
    envelope = new_envelope(
        source="test", type=RELEASE_CREATED.type, space="s", data=Created(widget=name)
    )
    await handler(envelope)
    await handler(Envelope.from_bytes(envelope.to_bytes()))
    async with sessionmaker() as session:
        count = (
            await session.execute(select(func.count()).where(Widget.name == name))
        ).scalar_one()
    assert count == 1
    assert applied == [envelope.id]


async def test_a_handler_failure_leaves_no_inbox_row_so_the_retry_applies(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    calls: list[int] = []

    async def flaky(session: AsyncSession, envelope: Envelope) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("transient")
        session.add(Widget(name=envelope.data["widget"]))

    handler = idempotent_handler(sessionmaker, Inbox, "common-tests--flaky", flaky)
    envelope = new_envelope(
        source="test", type=RELEASE_CREATED.type, space="s", data=Created(widget="flaky")
    )
    with pytest.raises(ConnectionError):
        await handler(envelope)
    await handler(envelope)
    assert len(calls) == 2


async def test_the_stream_deduplicates_a_republished_event(nats_url: str) -> None:
    space = f"space-{uuid.uuid4().hex[:8]}"
    envelope = new_envelope(
        source="test", type=RELEASE_CREATED.type, space=space, data=Created(widget="x")
    )
    async with broker_for(nats_url) as broker:
        await broker.wait_connected(10)
        await broker.publish(RELEASE_CREATED.subject(space), envelope)
        await broker.publish(RELEASE_CREATED.subject(space), envelope)
    assert len(await stream_subjects_for(nats_url, space)) == 1
    assert EVT_RELEASE.name == "CEPHALO_EVT_RELEASE"


class Secret(BaseModel):
    password: str


async def test_a_published_event_that_carries_secrets_keeps_no_data_in_the_table(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The bus got the whole event; the outbox row kept only the envelope."""
    broker = InMemoryBroker()
    space = f"space-{uuid.uuid4().hex[:8]}"
    async with unit_of_work(sessionmaker) as session:
        secret = emit_event(
            session,
            Outbox,
            DEPLOYMENT_REQUESTED,
            source="test",
            space=space,
            data=Secret(password="hunter2-and-more"),
        )
        plain = write_widget(session, space, "not-secret")
    relay = OutboxRelay(sessionmaker, Outbox, broker)
    while await relay.relay_once():
        pass
    sent = {envelope.id: envelope.data for _, envelope in broker.published}
    assert sent[secret.id] == {"password": "hunter2-and-more"}
    assert sent[plain.id] == {"widget": "not-secret"}
    async with sessionmaker() as session:
        kept = await session.get(Outbox, uuid.UUID(secret.id))
        other = await session.get(Outbox, uuid.UUID(plain.id))
    assert kept is not None and other is not None
    assert b"hunter2" not in kept.payload
    assert Envelope.from_bytes(kept.payload).data == REDACTED
    assert Envelope.from_bytes(other.payload).data == {"widget": "not-secret"}
