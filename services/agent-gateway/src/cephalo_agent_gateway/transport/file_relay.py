"""File streams between replicas, through a JetStream object store bucket.

A file for (or from) a polling agent held by another replica cannot ride the core NATS
request/reply of a routed call (1 MB messages, no flow control). It goes through the
`cephalo-agent-files` object store instead: chunked, acknowledged chunk by chunk, checked
against its SHA-256 on the way out, and written file to file (memory stays flat). The
caller deletes each object once the call is over; the bucket's TTL removes what a crashed
replica leaves behind.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import BucketNotFoundError
from nats.js.object_store import ObjectStore

from cephalo_agent_gateway.transport.bus import AgentBus

BUCKET = "cephalo-agent-files"


class FileRelay:
    def __init__(self, bus: AgentBus, *, ttl_seconds: float) -> None:
        self._bus = bus
        self._ttl = ttl_seconds
        self._store: ObjectStore | None = None

    async def put(self, name: str, source: Path) -> None:
        store = await self._bucket()
        with source.open("rb") as handle:
            await store.put(name, handle)

    async def fetch(self, name: str, destination: Path) -> None:
        """Write the object to `destination`; raises if its digest does not match."""
        store = await self._bucket()
        with destination.open("wb") as handle:
            await store.get(name, writeinto=handle)

    async def delete(self, name: str) -> None:
        with contextlib.suppress(Exception):
            await (await self._bucket()).delete(name)

    async def _bucket(self) -> ObjectStore:
        if self._store is None:
            js = self._bus.client().jetstream()
            try:
                self._store = await js.object_store(BUCKET)
            except BucketNotFoundError:
                config = ObjectStoreConfig(
                    bucket=BUCKET,
                    description="File streams routed between agent-gateway replicas",
                    ttl=self._ttl,
                    storage=StorageType.FILE,
                )
                self._store = await js.create_object_store(BUCKET, config=config)
        return self._store
