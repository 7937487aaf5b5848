from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from cephalo_common.testing import running
from cephalo_feed.app import create_app
from cephalo_feed.settings import FeedSettings


@pytest.fixture(scope="session")
def feed_settings(migrate: Callable[[str], str], nats_url: str, scratch_dir: Path) -> FeedSettings:
    return FeedSettings(
        database={"url": migrate("cephalo_feed")},
        nats={"url": nats_url},
        messaging={"outbox_poll_seconds": 0.1},
        storage_dir=scratch_dir / "feed-packages",
    )


@pytest.fixture
async def feed_app(feed_settings: FeedSettings) -> FastAPI:
    return create_app(feed_settings)


@pytest.fixture
async def client(feed_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(feed_app) as client:
        yield client
