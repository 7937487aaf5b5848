"""The task artifact store on a real NATS JetStream: the bucket is created on first use,
bytes come back as stored, a missing object is `ArtifactMissing`."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from cephalo_common.messaging.artifacts import ArtifactMissing, TaskArtifactStore
from cephalo_common.settings import NatsSettings


async def test_artifacts_are_stored_read_back_and_missing_ones_are_reported(
    new_nats: Callable[[str], str],
) -> None:
    settings = NatsSettings(url=new_nats("artifacts"))
    writer = TaskArtifactStore(settings, name="writer")
    reader = TaskArtifactStore(settings, name="reader")
    data = os.urandom(300_000)
    try:
        await writer.put("space/task/ticket/0", data)
        assert await reader.get("space/task/ticket/0") == data
        with pytest.raises(ArtifactMissing):
            await reader.get("space/task/ticket/1")
        await reader.aclose()
        assert await reader.get("space/task/ticket/0") == data, "reconnects after a close"
    finally:
        await writer.aclose()
        await reader.aclose()
