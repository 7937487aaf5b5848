"""`package.pushed` reaches JetStream exactly once per stored version, through the outbox,
also when the process died between the commit and the publish."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import nats
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from cephalo_common.contracts import PACKAGE_PUSHED, EventKind
from cephalo_common.db.migrations import upgrade
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.testing import running
from cephalo_feed.app import create_app
from cephalo_feed.db.models import OutboxEvent
from cephalo_feed.settings import FeedSettings


@pytest.fixture(scope="module")
def isolated_settings(feed_settings: FeedSettings, database_url: str) -> FeedSettings:
    """The feed on a database of its own: no other test's relay (the api-gateway suite keeps
    a package-feed running for the whole session) can publish these outbox rows."""
    name = f"feed_events_{uuid.uuid4().hex[:8]}"
    asyncio.run(_create_database(database_url, name))
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    upgrade("cephalo_feed", url)
    return feed_settings.model_copy(
        update={"database": feed_settings.database.model_copy(update={"url": url})}
    )


async def _create_database(url: str, name: str) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f"CREATE DATABASE {name}"))
    finally:
        await engine.dispose()


async def events_in_stream(nats_url: str, kind: EventKind, space: uuid.UUID) -> list[Envelope]:
    """Every `kind` event of `space` stored in the feed's stream (EVT_FEED)."""
    client = await nats.connect(nats_url)
    try:
        subscription = await client.jetstream().subscribe(
            kind.subject(str(space)), ordered_consumer=True
        )
        found: list[Envelope] = []
        with contextlib.suppress(TimeoutError, nats.errors.TimeoutError):
            while True:
                message = await subscription.next_msg(timeout=0.5)
                found.append(Envelope.from_bytes(message.data))
        return found
    finally:
        await client.close()


async def wait_for_events(
    nats_url: str, space: uuid.UUID, count: int, timeout: float = 15.0
) -> list[Envelope]:
    async with asyncio.timeout(timeout):
        while len(found := await events_in_stream(nats_url, PACKAGE_PUSHED, space)) < count:
            await asyncio.sleep(0.1)
    return found


async def push_without_relay(
    settings: FeedSettings, archives: Any, space: uuid.UUID, **params: str
) -> dict[str, Any]:
    """Commit a push in a process whose relay never runs (as if it died right after)."""
    quiet = create_app(settings.model_copy(update={"run_workers": False}))
    async with running(quiet) as client:
        response = await client.post(
            f"/api/v1/spaces/{space}/packages",
            params=params,
            files={"file": ("Acme.Events.1.0.0.zip", archives.zip({"a": b"b"}), "x/zip")},
        )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def pending_rows(settings: FeedSettings, space: uuid.UUID) -> list[OutboxEvent]:
    app = create_app(settings.model_copy(update={"run_workers": False}))
    async with app.router.lifespan_context(app), app.state.runtime.sessionmaker() as session:
        statement = select(OutboxEvent).where(
            OutboxEvent.subject == PACKAGE_PUSHED.subject(str(space))
        )
        return list((await session.execute(statement)).scalars().all())


async def test_an_event_committed_while_no_relay_ran_is_published_exactly_once_later(
    isolated_settings: FeedSettings, nats_url: str, archives: Any
) -> None:
    feed_settings = isolated_settings
    space = uuid.uuid4()
    pushed = await push_without_relay(feed_settings, archives, space)
    assert await events_in_stream(nats_url, PACKAGE_PUSHED, space) == []
    assert [row.published_at for row in await pending_rows(feed_settings, space)] == [None]

    async with running(create_app(feed_settings)):
        found = await wait_for_events(nats_url, space, 1)
        await asyncio.sleep(0.5)
    found = await events_in_stream(nats_url, PACKAGE_PUSHED, space)
    assert len(found) == 1
    event = found[0]
    assert event.type == "cephalo.feed.package.pushed.v1"
    assert event.data["package_version_id"] == pushed["id"]
    assert event.data["sha256"] == pushed["sha256"]
    assert event.data["replaced"] is False


async def test_a_relay_killed_between_publish_and_mark_does_not_duplicate_the_event(
    isolated_settings: FeedSettings, nats_url: str, archives: Any
) -> None:
    """The relay published, then died before marking the row: the next relay publishes the
    same envelope again, and JetStream drops it by its `Nats-Msg-Id` (the event id)."""
    feed_settings = isolated_settings
    space = uuid.uuid4()
    await push_without_relay(feed_settings, archives, space)
    (row,) = await pending_rows(feed_settings, space)
    broker = NatsBroker(feed_settings.nats, name="dying-relay")
    await broker.start()
    try:
        await broker.wait_connected(10)
        await broker.publish(row.subject, Envelope.from_bytes(row.payload))
    finally:
        await broker.close()
    assert len(await events_in_stream(nats_url, PACKAGE_PUSHED, space)) == 1

    async with running(create_app(feed_settings)):
        async with asyncio.timeout(15):
            while (await pending_rows(feed_settings, space))[0].published_at is None:
                await asyncio.sleep(0.1)
    found = await events_in_stream(nats_url, PACKAGE_PUSHED, space)
    assert [event.id for event in found] == [str(row.id)]


@pytest.mark.parametrize(
    ("second_mode", "events"),
    [("IgnoreIfExists", [False]), ("OverwriteExisting", [False, True])],
)
async def test_each_stored_version_is_announced_once_and_a_kept_one_not_at_all(
    isolated_settings: FeedSettings,
    nats_url: str,
    archives: Any,
    second_mode: str,
    events: list[bool],
) -> None:
    feed_settings = isolated_settings
    space = uuid.uuid4()
    async with running(create_app(feed_settings)) as client:
        for mode in ("FailIfExists", second_mode):
            response = await client.post(
                f"/api/v1/spaces/{space}/packages",
                params={"overwriteMode": mode},
                files={"file": ("Acme.Once.1.0.0.zip", archives.zip({"n": mode.encode()}), "x")},
            )
            assert response.status_code in (200, 201)
        found = await wait_for_events(nats_url, space, len(events))
        await asyncio.sleep(0.5)
    found = await events_in_stream(nats_url, PACKAGE_PUSHED, space)
    assert [event.data["replaced"] for event in found] == events
