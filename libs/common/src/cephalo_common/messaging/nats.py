"""JetStream implementation of `Broker`: reconnects for ever, re-creates pull subscriptions.

A nats-py pull subscription can stop receiving after a server restart, so the consume
loop rebuilds it whenever the connection was re-established or a fetch fails for any
reason other than an empty batch.

A server that comes back without its store (JetStream directory lost) gets every stream
re-created at reconnect; the broker notices from the streams' creation times and tells its
`on_store_lost` listeners (the outbox relay re-publishes what the lost store may have held).
A server that was killed may also have lost the last messages it acknowledged (JetStream
writes them to disk a moment later): after any reconnect the `on_reconnected` listeners
learn when the connection dropped (the relay re-publishes what it published just before).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import BadRequestError, NotFoundError

from cephalo_common.ids import utc_now
from cephalo_common.logging import get_logger
from cephalo_common.messaging import subjects
from cephalo_common.messaging.broker import ConsumerSpec, PermanentFailure
from cephalo_common.messaging.envelope import CONTENT_TYPE, Envelope
from cephalo_common.messaging.streams import ALL_STREAMS, StreamSpec
from cephalo_common.settings import NatsSettings

UNANSWERED_FETCHES = 5  # pulls in a row with no answer at all before resubscribing
ENSURE_ATTEMPTS = 20  # after a reconnect, JetStream may answer a moment after the server
ENSURE_RETRY_SECONDS = 0.5
StoreLostListener = Callable[[], Awaitable[None]]
ReconnectedListener = Callable[[datetime], Awaitable[None]]
log = get_logger(__name__)


class NatsBroker:
    """Owns one NATS connection; `start()` returns at once and connects in the background."""

    def __init__(
        self, settings: NatsSettings, *, name: str, streams: tuple[StreamSpec, ...] = ALL_STREAMS
    ) -> None:
        self._settings = settings
        self._name = name
        self._streams = streams
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._ready = asyncio.Event()
        self._generation = 0
        self._connector: asyncio.Task[None] | None = None
        self._created: dict[str, datetime | None] = {}
        self._store_lost_listeners: list[StoreLostListener] = []
        self._reconnected_listeners: list[ReconnectedListener] = []
        self._disconnected_at: datetime | None = None
        self._ensurer: asyncio.Task[None] | None = None
        self._ensuring = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected and self._ready.is_set()

    async def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_forever(), name="nats-connect")

    async def wait_connected(self, timeout: float | None = None) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    def on_store_lost(self, listener: StoreLostListener) -> None:
        """Call `listener` when the server came back with streams newer than the ones this
        broker saw before: their messages are gone."""
        self._store_lost_listeners.append(listener)

    def on_reconnected(self, listener: ReconnectedListener) -> None:
        """Call `listener` with the time the connection dropped, once the streams are
        ensured after a reconnect to a server that kept its store."""
        self._reconnected_listeners.append(listener)

    async def close(self) -> None:
        for task in (self._connector, self._ensurer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.close()

    async def _connect_forever(self) -> None:
        delay = 0.2
        while True:
            try:
                self._nc = await nats.connect(
                    servers=self._settings.url.split(","),
                    name=self._name,
                    connect_timeout=self._settings.connect_timeout_seconds,
                    allow_reconnect=True,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=0.5,
                    reconnected_cb=self._on_reconnected,
                    disconnected_cb=self._on_disconnected,
                    error_cb=self._on_error,
                )
                self._js = self._nc.jetstream()
                await self.ensure_streams()
                self._ready.set()
                log.info("nats connected", url=self._settings.url)
                return
            except Exception as error:  # noqa: BLE001 - keep trying, report not-ready
                log.warning("nats not reachable; retrying", error=str(error), delay=delay)
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _on_reconnected(self) -> None:
        self._generation += 1
        log.info("nats reconnected")
        if self._ensurer is None or self._ensurer.done():
            self._ensurer = asyncio.create_task(self._ensure_after_reconnect())

    async def _ensure_after_reconnect(self) -> None:
        """Re-create the streams a server without its store lacks; a publish-only service
        has no consumer whose resubscribe would do it."""
        for _ in range(ENSURE_ATTEMPTS):
            try:
                store_lost = await self.ensure_streams()
            except Exception as error:  # noqa: BLE001 - JetStream not answering yet
                log.info("streams not ensured yet after reconnect", error=str(error))
                await asyncio.sleep(ENSURE_RETRY_SECONDS)
                continue
            dropped, self._disconnected_at = self._disconnected_at, None
            if dropped is not None and not store_lost:
                await _notify(self._reconnected_listeners, dropped)
            return

    async def _on_disconnected(self) -> None:
        if self._disconnected_at is None:
            self._disconnected_at = utc_now()
        log.warning("nats disconnected")

    async def _on_error(self, error: Exception) -> None:
        log.debug("nats error", error=str(error))

    def _jetstream(self) -> JetStreamContext:
        if self._js is None or not self.connected:
            raise ConnectionError("not connected to NATS")
        return self._js

    async def ensure_streams(self) -> bool:
        """Create or update every declared stream (idempotent); a stream created anew since
        this broker last saw it means the server lost its store (returns True)."""
        async with self._ensuring:
            renewed = await self._ensure_each_stream()
        if renewed:
            log.warning("nats lost its store; streams re-created", streams=renewed)
            await _notify(self._store_lost_listeners)
        return bool(renewed)

    async def _ensure_each_stream(self) -> list[str]:
        assert self._js is not None
        renewed: list[str] = []
        for spec in self._streams:
            config = StreamConfig(
                name=spec.name,
                subjects=list(spec.subjects),
                retention=RetentionPolicy.WORK_QUEUE if spec.work_queue else RetentionPolicy.LIMITS,
                storage=StorageType.FILE,
                max_age=spec.max_age_seconds,
                duplicate_window=self._settings.duplicate_window_seconds
                or spec.duplicate_window_seconds,
            )
            try:
                info = await self._js.add_stream(config)
            except BadRequestError:
                info = await self._js.update_stream(config)
            seen = self._created.get(spec.name)
            self._created[spec.name] = info.created
            if seen is not None and info.created is not None and info.created != seen:
                renewed.append(spec.name)
        return renewed

    async def publish(self, subject: str, envelope: Envelope) -> None:
        headers = {
            "Nats-Msg-Id": envelope.id,
            "Content-Type": CONTENT_TYPE,
            "ce-type": envelope.type,
        }
        await self._jetstream().publish(subject, envelope.to_bytes(), timeout=5, headers=headers)

    async def consume(self, spec: ConsumerSpec) -> None:
        """Pull and handle messages until cancelled; rebuild the subscription after trouble."""
        await self._ready.wait()
        while True:
            generation = self._generation
            try:
                subscription = await self._subscribe(spec)
                unanswered = 0
                while generation == self._generation:
                    try:
                        messages = await subscription.fetch(spec.batch_size, timeout=2)
                    except NatsTimeoutError:
                        _raise_if_cancelled()
                        continue
                    except TimeoutError:
                        # The server's answer to a pull can be late on a loaded machine:
                        # ask again at once; only a run of them rebuilds the subscription.
                        _raise_if_cancelled()
                        unanswered += 1
                        if unanswered >= UNANSWERED_FETCHES:
                            raise
                        continue
                    unanswered = 0
                    if spec.batch_handler is not None and await self._handle_batch(spec, messages):
                        continue
                    for message in messages:
                        await self._handle(spec, message)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - survive NATS restarts
                _raise_if_cancelled()
                log.warning(
                    "consumer interrupted; resubscribing",
                    consumer=spec.name,
                    error=f"{type(error).__name__}: {error}",
                )
                await asyncio.sleep(1.0)

    async def _subscribe(self, spec: ConsumerSpec) -> Any:
        js = self._jetstream()
        backoff = [spec.ack_wait_seconds * (2**i) for i in range(min(3, spec.max_deliver - 1))]
        config = ConsumerConfig(
            durable_name=spec.name,
            filter_subject=spec.filter_subject,
            ack_wait=spec.ack_wait_seconds,
            max_deliver=spec.max_deliver,
            backoff=backoff or None,
        )
        try:
            return await js.pull_subscribe(
                spec.filter_subject, durable=spec.name, stream=spec.stream, config=config
            )
        except NotFoundError:
            await self.ensure_streams()
            raise

    async def _handle(self, spec: ConsumerSpec, message: Any) -> None:
        try:
            envelope = Envelope.from_bytes(message.data)
        except ValueError as error:
            await self._dead_letter(spec, message, f"undecodable message: {error}")
            return
        try:
            await spec.handler(envelope)
        except PermanentFailure as error:
            await self._dead_letter(spec, message, str(error))
            return
        except Exception as error:  # noqa: BLE001 - redelivered with back-off
            delivered = message.metadata.num_delivered
            if delivered >= spec.max_deliver:
                await self._dead_letter(spec, message, str(error))
                return
            log.warning(
                "handler failed; will redeliver",
                consumer=spec.name,
                event_id=envelope.id,
                delivered=delivered,
                error=str(error),
            )
            await message.nak(delay=spec.redelivery_delay(delivered))
            return
        await message.ack()

    async def _handle_batch(self, spec: ConsumerSpec, messages: list[Any]) -> bool:
        """Group commit: True when the batch handler took every message (all acked);
        False sends each through `_handle` instead."""
        assert spec.batch_handler is not None
        if len(messages) < 2:
            return False
        try:
            envelopes = [Envelope.from_bytes(message.data) for message in messages]
            await spec.batch_handler(envelopes)
        except Exception as error:  # noqa: BLE001 - retried one by one
            log.info("batch handled one by one", consumer=spec.name, error=str(error))
            return False
        for message in messages:
            await message.ack()
        return True

    async def _dead_letter(self, spec: ConsumerSpec, message: Any, reason: str) -> None:
        log.error("message dead-lettered", consumer=spec.name, reason=reason)
        headers = {"Cephalo-Dead-Letter-Reason": reason[:500], "Cephalo-Subject": message.subject}
        await self._jetstream().publish(
            subjects.dead_letter(spec.name), message.data, timeout=5, headers=headers
        )
        await message.term()


async def _notify(listeners: list[Callable[..., Awaitable[None]]], *args: Any) -> None:
    for listener in listeners:
        try:
            await listener(*args)
        except Exception as error:  # noqa: BLE001 - one listener must not stop the others
            log.error("nats listener failed", error=str(error))


def _raise_if_cancelled() -> None:
    """nats-py can turn a cancellation inside `fetch` into a timeout or another error;
    a cancelled consumer must still stop, or shutdown waits for it for ever."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
