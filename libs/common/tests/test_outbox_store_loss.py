"""NATS comes back without its store: the outbox feeds the lost events again from PostgreSQL.

A real Postgres and a NATS server of the test's own, stopped, its JetStream directory deleted,
and started again empty. An event published before the loss and never fetched is gone from
NATS; the broker notices the streams were re-created and the relay publishes it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import nats
import pytest
from nats.js.errors import NotFoundError
from pydantic import BaseModel
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from cephalo_common.contracts import DEPLOYMENT_REQUESTED, RELEASE_CREATED
from cephalo_common.db.base import service_metadata
from cephalo_common.db.engine import create_engine, create_sessionmaker
from cephalo_common.db.outbox import OutboxMixin, OutboxRelay, emit_event
from cephalo_common.db.session import unit_of_work
from cephalo_common.embedded import EmbeddedNats
from cephalo_common.ids import utc_now
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import DatabaseSettings, NatsSettings


class Base(DeclarativeBase):
    metadata = service_metadata("common_store_loss")


class Outbox(OutboxMixin, Base):
    __tablename__ = "outbox"


class Note(BaseModel):
    widget: str


@pytest.fixture(scope="module")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(DatabaseSettings(url=database_url), application_name="store-loss")
    async with engine.begin() as connection:
        await connection.execute(text("CREATE SCHEMA IF NOT EXISTS common_store_loss"))
        await connection.run_sync(Base.metadata.create_all)
    yield engine
    await engine.dispose()


async def in_stream(url: str, subject: str) -> list[str]:
    """The widgets of the events on `subject` the stream holds now."""
    client = await nats.connect(url)
    try:
        try:
            subscription = await client.jetstream().subscribe(subject, ordered_consumer=True)
        except NotFoundError:  # no stream yet
            return []
        found: list[str] = []
        with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
            for _ in range(100):
                message = await subscription.next_msg(timeout=0.5)
                found.append(Envelope.from_bytes(message.data).data["widget"])
        return found
    finally:
        await client.close()


async def published(sessionmaker: async_sessionmaker[AsyncSession], space: str) -> int:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Outbox.id).where(
                Outbox.published_at.is_not(None), Outbox.subject.contains(space)
            )
        )
        return len(rows.all())


@pytest.mark.timeout(120)
async def test_events_a_lost_store_held_are_published_again(
    engine: AsyncEngine, own_nats: EmbeddedNats
) -> None:
    sessionmaker = create_sessionmaker(engine)
    space = f"space-{uuid.uuid4().hex[:8]}"
    subject = RELEASE_CREATED.subject(space)
    broker = NatsBroker(NatsSettings(url=own_nats.url), name="store-loss")
    await broker.start()
    relay = OutboxRelay(sessionmaker, Outbox, broker, poll_seconds=0.1)
    broker.on_store_lost(lambda: relay.replay_published_since(utc_now() - timedelta(minutes=1)))
    try:
        await broker.wait_connected(30)
        async with unit_of_work(sessionmaker) as session:
            for kind, name in ((RELEASE_CREATED, "kept"), (DEPLOYMENT_REQUESTED, "secret")):
                emit_event(session, Outbox, kind, source="t", space=space, data=Note(widget=name))
        assert await relay.relay_once() == 2
        assert await in_stream(own_nats.url, subject) == ["kept"]

        own_nats.stop()
        shutil.rmtree(own_nats.store_dir)
        own_nats.start()

        running = asyncio.create_task(relay.run())
        try:
            async with asyncio.timeout(60):
                while await in_stream(own_nats.url, subject) != ["kept"]:
                    await asyncio.sleep(0.2)
                while await published(sessionmaker, space) != 2:
                    await asyncio.sleep(0.1)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        assert await in_stream(own_nats.url, DEPLOYMENT_REQUESTED.subject(space)) == []
    finally:
        await broker.close()


async def published_at(sessionmaker: async_sessionmaker[AsyncSession], space: str) -> list[Any]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Outbox.published_at).where(Outbox.subject.contains(space))
        )
        return [row[0] for row in rows.all()]


@pytest.mark.timeout(120)
async def test_events_published_just_before_a_kill_are_published_again_once(
    engine: AsyncEngine, own_nats: EmbeddedNats
) -> None:
    """A killed server may lose what it acknowledged last: after the reconnect the relay
    publishes again what it published just before the drop; the stream keeps one copy."""
    sessionmaker = create_sessionmaker(engine)
    space = f"space-{uuid.uuid4().hex[:8]}"
    broker = NatsBroker(NatsSettings(url=own_nats.url), name="killed")
    await broker.start()
    relay = OutboxRelay(sessionmaker, Outbox, broker, poll_seconds=0.1)
    broker.on_reconnected(
        lambda dropped: relay.replay_published_since(dropped - timedelta(seconds=5))
    )
    try:
        await broker.wait_connected(30)
        async with unit_of_work(sessionmaker) as session:
            emit_event(
                session, Outbox, RELEASE_CREATED, source="t", space=space, data=Note(widget="last")
            )
        assert await relay.relay_once() == 1
        [first] = await published_at(sessionmaker, space)

        assert own_nats.process is not None
        os.killpg(own_nats.process.pid, signal.SIGKILL)
        own_nats.process.wait(30)
        own_nats.process = None
        own_nats.start()

        running = asyncio.create_task(relay.run())
        try:
            async with asyncio.timeout(60):
                while (await published_at(sessionmaker, space)) in ([first], [None]):
                    await asyncio.sleep(0.1)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        assert await in_stream(own_nats.url, RELEASE_CREATED.subject(space)) == ["last"]
    finally:
        await broker.close()
