"""In-memory `Broker` for pure unit tests: same interface, no server, no persistence."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from cephalo_common.messaging.broker import ConsumerSpec
from cephalo_common.messaging.envelope import Envelope


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, `>` the rest."""
    wanted, actual = pattern.split("."), subject.split(".")
    for index, part in enumerate(wanted):
        if part == ">":
            return len(actual) > index
        if index >= len(actual) or (part != "*" and part != actual[index]):
            return False
    return len(wanted) == len(actual)


@dataclass
class InMemoryBroker:
    published: list[tuple[str, Envelope]] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _queues: dict[str, asyncio.Queue[Envelope]] = field(default_factory=dict)
    _filters: dict[str, str] = field(default_factory=dict)
    connected: bool = True

    async def publish(self, subject: str, envelope: Envelope) -> None:
        if not self.connected:
            raise ConnectionError("broker is down")
        if envelope.id in self._seen:
            return
        self._seen.add(envelope.id)
        self.published.append((subject, envelope))
        for name, pattern in self._filters.items():
            if subject_matches(pattern, subject):
                self._queues[name].put_nowait(envelope)

    async def consume(self, spec: ConsumerSpec) -> None:
        queue = self._queues.setdefault(spec.name, asyncio.Queue())
        self._filters[spec.name] = spec.filter_subject
        while True:
            envelope = await queue.get()
            for attempt in range(1, spec.max_deliver + 1):
                try:
                    await spec.handler(envelope)
                    break
                except Exception:  # noqa: BLE001 - mirrors redelivery
                    if attempt == spec.max_deliver:
                        break
            queue.task_done()
