"""Real upstreams for the gateway: release-service and package-feed apps served by uvicorn
on free loopback ports, on the session's real Postgres and NATS."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cephalo_common.embedded import free_port
from cephalo_common.testing import running, serving
from cephalo_feed.app import create_app as create_feed_app
from cephalo_feed.settings import FeedSettings
from cephalo_gateway.app import create_app
from cephalo_gateway.settings import GatewaySettings
from cephalo_release.app import create_app as create_release_app
from cephalo_release.settings import ReleaseSettings

Serve = Callable[[Any], AbstractAsyncContextManager[str]]


@pytest.fixture(scope="session")
def serve() -> Serve:
    return serving


@pytest.fixture(scope="session")
def common_settings(nats_url: str) -> dict[str, Any]:
    return {"nats": {"url": nats_url}, "messaging": {"outbox_poll_seconds": 0.1}}


@pytest.fixture(scope="session")
def release_settings(
    migrate: Callable[[str], str], common_settings: dict[str, Any]
) -> ReleaseSettings:
    """Migrations run synchronously (they start their own event loop), so outside async
    fixtures."""
    return ReleaseSettings(database={"url": migrate("cephalo_release")}, **common_settings)


@pytest.fixture(scope="session")
def feed_settings(
    migrate: Callable[[str], str], common_settings: dict[str, Any], scratch_dir: Path
) -> FeedSettings:
    return FeedSettings(
        database={"url": migrate("cephalo_feed")},
        storage_dir=scratch_dir / "gateway-feed-packages",
        **common_settings,
    )


@pytest.fixture(scope="session")
async def release_url(release_settings: ReleaseSettings) -> AsyncIterator[str]:
    async with serving(create_release_app(release_settings)) as url:
        yield url


@pytest.fixture(scope="session")
async def feed_url(feed_settings: FeedSettings) -> AsyncIterator[str]:
    async with serving(create_feed_app(feed_settings)) as url:
        yield url


@pytest.fixture(scope="session")
def nothing_listening() -> str:
    """An address where no server runs (the port was free a moment ago)."""
    return f"http://127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def gateway_database_url(migrate: Callable[[str], str]) -> str:
    return migrate("cephalo_gateway")


@pytest.fixture(scope="session")
def gateway_settings(
    gateway_database_url: str,
    common_settings: dict[str, Any],
    release_url: str,
    feed_url: str,
    nothing_listening: str,
) -> GatewaySettings:
    return GatewaySettings(
        database={"url": gateway_database_url},
        release_service_url=release_url,
        package_feed_url=feed_url,
        orchestrator_url=nothing_listening,
        agent_gateway_url=nothing_listening,
        upstream_timeout_seconds=5,
        **common_settings,
    )


@pytest.fixture
def gateway_app(gateway_settings: GatewaySettings) -> FastAPI:
    return create_app(gateway_settings)


@pytest.fixture
async def client(gateway_app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(gateway_app) as client:
        yield client
