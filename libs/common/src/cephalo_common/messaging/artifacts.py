"""Task artifacts' bytes, in the `cephalo-task-artifacts` JetStream object store bucket.

agent-gateway writes a step's artifacts there once the step ends (the object name travels in
`step.finished`); deploy-orchestrator lists them per task and reads them back for download.
Each side holds its own lazily opened connection, so neither depends on the other's broker.
"""

from __future__ import annotations

import asyncio
import contextlib

import nats
from nats.aio.client import Client
from nats.js.api import ObjectStoreConfig, StorageType
from nats.js.errors import BucketNotFoundError, ObjectNotFoundError
from nats.js.object_store import ObjectStore

from cephalo_common.settings import NatsSettings

BUCKET = "cephalo-task-artifacts"
MAX_ARTIFACT_BYTES = 64 * 1024 * 1024


class ArtifactMissing(LookupError):
    """The object is not (or no longer) in the bucket."""


class TaskArtifactStore:
    def __init__(self, settings: NatsSettings, *, name: str) -> None:
        self._settings = settings
        self._name = name
        self._client: Client | None = None
        self._store: ObjectStore | None = None
        self._opening = asyncio.Lock()

    async def put(self, object_name: str, data: bytes, attempts: int = 3) -> None:
        """Store the bytes; a failed attempt (NATS unreachable, a slow connect under load)
        is retried on a fresh connection, the last failure is raised."""
        for attempt in range(1, attempts + 1):
            try:
                await (await self._bucket()).put(object_name, data)
                return
            except Exception:
                if attempt == attempts:
                    raise
                await self.aclose()
                await asyncio.sleep(0.5 * attempt)

    async def get(self, object_name: str) -> bytes:
        try:
            result = await (await self._bucket()).get(object_name)
        except ObjectNotFoundError:
            raise ArtifactMissing(object_name) from None
        return result.data or b""

    async def aclose(self) -> None:
        client, self._client, self._store = self._client, None, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):
                await client.close()

    async def _bucket(self) -> ObjectStore:
        async with self._opening:
            if self._client is None or self._client.is_closed:
                self._store = None
                self._client = await nats.connect(
                    servers=self._settings.url.split(","),
                    name=self._name,
                    connect_timeout=self._settings.connect_timeout_seconds,
                )
            if self._store is None:
                self._store = await _open_bucket(self._client)
            return self._store


async def _open_bucket(client: Client) -> ObjectStore:
    js = client.jetstream()
    try:
        return await js.object_store(BUCKET)
    except BucketNotFoundError:
        config = ObjectStoreConfig(
            bucket=BUCKET,
            description="Files published by deployment steps",
            storage=StorageType.FILE,
        )
        return await js.create_object_store(BUCKET, config=config)
