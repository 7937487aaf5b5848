from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import nats
import pytest
from fastapi import FastAPI
from nats.aio.client import Client

from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import NatsSettings
from cephalo_common.testing import running
from cephalo_orchestrator.app import create_app
from cephalo_orchestrator.settings import OrchestratorSettings

from .fakes import FakeAgentGateway, FakePackageFeed


@pytest.fixture(scope="session")
async def fake_gateway() -> AsyncIterator[FakeAgentGateway]:
    gateway = FakeAgentGateway()
    await gateway.start()
    yield gateway
    await gateway.stop()


@pytest.fixture(scope="session")
async def fake_feed() -> AsyncIterator[FakePackageFeed]:
    feed = FakePackageFeed()
    await feed.start()
    yield feed
    await feed.stop()


@pytest.fixture(scope="session")
def orchestrator_database(migrate: Callable[[str], str]) -> str:
    return migrate("cephalo_orchestrator")


@pytest.fixture(scope="session")
def make_settings(
    orchestrator_database: str,
    nats_url: str,
    fake_gateway: FakeAgentGateway,
    fake_feed: FakePackageFeed,
) -> Callable[..., OrchestratorSettings]:
    """Settings for one app; fast polling so tests take seconds, not minutes."""

    def make(**overrides: Any) -> OrchestratorSettings:
        values: dict[str, Any] = {
            "database": {"url": orchestrator_database},
            "nats": {"url": nats_url},
            "messaging": {"outbox_poll_seconds": 0.1, "consumer_ack_wait_seconds": 5},
            "agent_gateway_url": fake_gateway.url,
            "package_feed_url": fake_feed.url,
            "package_download_base_url": "http://gateway.test:8080/",
            "task_poll_seconds": 0.1,
            "metrics_refresh_seconds": 0.2,
            **overrides,
        }
        return OrchestratorSettings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., OrchestratorSettings]) -> OrchestratorSettings:
    return make_settings()


@pytest.fixture(scope="session")
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    """Publishes as the other services would (JetStream, with Nats-Msg-Id)."""
    broker = NatsBroker(NatsSettings(url=nats_url), name="orchestrator-tests")
    await broker.start()
    await broker.wait_connected(10)
    yield broker
    await broker.close()


@pytest.fixture(scope="session")
async def nats_client(nats_url: str, broker: NatsBroker) -> AsyncIterator[Client]:
    """A plain nats-py connection for subscriptions and stream look-ups (streams exist)."""
    client = await nats.connect(nats_url)
    yield client
    await client.close()


@pytest.fixture
async def app(settings: OrchestratorSettings) -> FastAPI:
    """The orchestrator under test; a module overrides it for other settings."""
    return create_app(settings)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with running(app) as client:
        yield client
