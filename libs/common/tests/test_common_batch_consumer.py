"""Group commit on a real JetStream consumer: a fetched batch goes to the batch handler at
once; a batch that fails is handled message by message, so one bad message is dead-lettered
alone and the others are still applied."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import pytest
from pydantic import BaseModel

from cephalo_common.contracts import RELEASE_CREATED
from cephalo_common.messaging.broker import ConsumerSpec, PermanentFailure
from cephalo_common.messaging.envelope import Envelope, new_envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.messaging.streams import EVT_RELEASE
from cephalo_common.settings import NatsSettings


class Created(BaseModel):
    widget: str


@contextlib.asynccontextmanager
async def broker_for(url: str) -> AsyncIterator[NatsBroker]:
    broker = NatsBroker(NatsSettings(url=url), name="batch-test")
    await broker.start()
    try:
        await broker.wait_connected(10)
        yield broker
    finally:
        await broker.close()


class Recorder:
    def __init__(self, expected: int) -> None:
        self.batches: list[list[str]] = []
        self.singles: list[str] = []
        self.expected = expected
        self.done = asyncio.Event()

    async def batch(self, envelopes: list[Envelope]) -> None:
        widgets = [envelope.data["widget"] for envelope in envelopes]
        self.batches.append(widgets)
        if "bad" in widgets:
            raise PermanentFailure("a bad widget in the batch")
        self._count(len(widgets))

    async def single(self, envelope: Envelope) -> None:
        self.singles.append(envelope.data["widget"])
        self._count(1)
        if envelope.data["widget"] == "bad":
            raise PermanentFailure("a bad widget")

    def _count(self, applied: int) -> None:
        self.expected -= applied
        if self.expected <= 0:
            self.done.set()


async def consume(nats_url: str, widgets: list[str]) -> Recorder:
    """Publish every widget first, so that the first fetch takes them all in one batch."""
    space = f"batch-{uuid.uuid4().hex[:8]}"
    recorder = Recorder(len(widgets))
    async with broker_for(nats_url) as broker:
        for widget in widgets:
            envelope = new_envelope(
                source="test", type=RELEASE_CREATED.type, space=space, data=Created(widget=widget)
            )
            await broker.publish(RELEASE_CREATED.subject(space), envelope)
        spec = ConsumerSpec(
            name=f"common-tests--{space}",
            stream=EVT_RELEASE.name,
            filter_subject=RELEASE_CREATED.subject(space),
            handler=recorder.single,
            batch_handler=recorder.batch,
            batch_size=20,
        )
        consumer = asyncio.create_task(broker.consume(spec))
        try:
            async with asyncio.timeout(30):
                await recorder.done.wait()
            await asyncio.sleep(0.2)  # nothing more arrives: every message was acked
        finally:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer
    return recorder


@pytest.mark.timeout(60)
async def test_a_fetched_batch_is_applied_at_once(nats_url: str) -> None:
    recorder = await consume(nats_url, ["a", "b", "c", "d"])
    assert recorder.batches == [["a", "b", "c", "d"]]
    assert recorder.singles == []


@pytest.mark.timeout(60)
async def test_a_failing_batch_is_applied_message_by_message(nats_url: str) -> None:
    recorder = await consume(nats_url, ["a", "bad", "c"])
    assert recorder.batches == [["a", "bad", "c"]]
    assert recorder.singles == ["a", "bad", "c"]
