"""The messaging interface services code against: JetStream in production, memory in unit tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from cephalo_common.messaging.envelope import Envelope

Handler = Callable[[Envelope], Awaitable[None]]
BatchHandler = Callable[[list[Envelope]], Awaitable[None]]


class PermanentFailure(Exception):
    """A handler's verdict that retrying cannot help: the message goes to the dead letters."""


@dataclass(frozen=True)
class ConsumerSpec:
    """A durable consumer named `<service>--<purpose>` on one stream and filter subject."""

    name: str
    stream: str
    filter_subject: str
    handler: Handler
    max_deliver: int = 8
    backoff_seconds: tuple[float, ...] = (0.5, 2.0, 5.0, 15.0, 30.0)
    ack_wait_seconds: float = 30.0
    batch_size: int = 10
    extra: dict[str, str] = field(default_factory=dict)
    # Optional group commit: handles every message of a fetched batch at once (one
    # transaction for all); when it raises, each message is handled alone by `handler`,
    # so one bad message never holds back the others.
    batch_handler: BatchHandler | None = None

    def redelivery_delay(self, delivered: int) -> float:
        """The delay before the next try after `delivered` failed deliveries."""
        index = min(max(delivered - 1, 0), len(self.backoff_seconds) - 1)
        return self.backoff_seconds[index]


class Broker(Protocol):
    @property
    def connected(self) -> bool: ...

    async def publish(self, subject: str, envelope: Envelope) -> None:
        """Publish and wait for the stream's ack; `envelope.id` de-duplicates."""

    async def consume(self, spec: ConsumerSpec) -> None:
        """Run the consumer until cancelled, surviving disconnects."""
