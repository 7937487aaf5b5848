from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from cephalo_common.testing import running
from cephalo_release.app import create_app
from cephalo_release.settings import ReleaseSettings


@pytest.fixture(scope="session")
def release_settings(migrate: Callable[[str], str], nats_url: str) -> ReleaseSettings:
    return ReleaseSettings(
        database={"url": migrate("cephalo_release")},
        nats={"url": nats_url},
        messaging={"outbox_poll_seconds": 0.1},
    )


@pytest.fixture
async def client(release_settings: ReleaseSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(release_settings)) as client:
        yield client
