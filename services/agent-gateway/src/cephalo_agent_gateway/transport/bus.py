"""A plain NATS connection for core request/reply between replicas and for notifications.

The common `NatsBroker` speaks JetStream for events and commands; routing a call to the
replica that holds an agent's connection needs core NATS (not persisted, answered at once).
Like the broker, it connects in the background and retries for ever; subscriptions asked for
before the connection exists are made as soon as it does (nats-py renews them after a
reconnect).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from cephalo_common.logging import get_logger
from cephalo_common.settings import NatsSettings

log = get_logger(__name__)
Callback = Callable[[Msg], Awaitable[None]]


class NotConnected(ConnectionError):
    """NATS is not reachable right now."""


class AgentBus:
    def __init__(self, settings: NatsSettings, *, name: str) -> None:
        self._settings = settings
        self._name = name
        self._nc: Client | None = None
        self._ready = asyncio.Event()
        self._connector: asyncio.Task[None] | None = None
        self._standing: list[tuple[str, str, Callback]] = []

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected and self._ready.is_set()

    def start(self) -> None:
        self._connector = asyncio.create_task(self._connect_forever(), name="agent-bus-connect")

    async def wait_connected(self, timeout: float) -> None:
        await asyncio.wait_for(self._ready.wait(), timeout)

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._connector
        if self._nc is not None and not self._nc.is_closed:
            with contextlib.suppress(Exception):
                await self._nc.close()

    def client(self) -> Client:
        if self._nc is None or not self.connected:
            raise NotConnected("not connected to NATS")
        return self._nc

    async def standing_subscription(
        self, subject: str, callback: Callback, queue: str = ""
    ) -> None:
        """A subscription for the life of the bus, made now or as soon as NATS is reachable."""
        self._standing.append((subject, queue, callback))
        if self.connected:
            await self.client().subscribe(subject, queue=queue, cb=callback)

    async def subscribe(self, subject: str, callback: Callback, queue: str = "") -> Subscription:
        return await self.client().subscribe(subject, queue=queue, cb=callback)

    async def publish(
        self,
        subject: str,
        data: bytes,
        *,
        reply: str = "",
        headers: dict[str, str] | None = None,
    ) -> None:
        await self.client().publish(subject, data, reply=reply, headers=headers)

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
                    error_cb=self._on_error,
                )
                for subject, queue, callback in self._standing:
                    await self._nc.subscribe(subject, queue=queue, cb=callback)
                self._ready.set()
                return
            except Exception as error:  # noqa: BLE001 - keep trying; routed calls fail meanwhile
                log.warning("agent bus: nats not reachable; retrying", error=str(error))
                if self._nc is not None:
                    with contextlib.suppress(Exception):
                        await self._nc.close()
                    self._nc = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    async def _on_error(self, error: Exception) -> None:
        log.debug("agent bus: nats error", error=str(error))
