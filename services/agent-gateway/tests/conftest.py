"""Fixtures: the real release-service on a free port, a gateway per test, NATS helpers.

Everything is real: Postgres, NATS JetStream, release-service (served by uvicorn, because
the gateway calls it over HTTP), mutual TLS on the polling port.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import (
    WAIT_SECONDS,
    Orchestrator,
    RunningGateway,
    Space,
    StepEvents,
    gateway_running,
    step_events,
    unique,
)
from cephalo_common.embedded import free_port
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import NatsSettings
from cephalo_common.testing import serving
from cephalo_release.app import create_app as create_release_app
from cephalo_release.settings import ReleaseSettings


@pytest.fixture(scope="session")
def database(migrate: Callable[[str], str]) -> str:
    migrate("cephalo_release")
    return migrate("cephalo_agent_gateway")


@pytest.fixture(scope="session")
async def release_url(database: str, nats_url: str) -> AsyncIterator[str]:
    """The real release-service, so environment resolution is exercised end to end."""
    settings = ReleaseSettings(
        database={"url": database}, nats={"url": nats_url}, run_workers=False
    )
    async with serving(create_release_app(settings), lifespan="on") as url:
        yield url


@pytest.fixture
async def space(release_url: str) -> Space:
    """A fresh space with environments Production and Staging (the DB is shared)."""
    async with httpx.AsyncClient(base_url=release_url) as client:
        slug = unique("space")
        response = await client.post("/api/v1/spaces", json={"name": slug, "slug": slug})
        assert response.status_code == 201, response.text
        space_id = response.json()["id"]
        environments = {}
        for name in ("Production", "Staging"):
            response = await client.post(
                f"/api/v1/spaces/{space_id}/environments", json={"name": name}
            )
            assert response.status_code == 201, response.text
            environments[name] = uuid.UUID(response.json()["id"])
    return Space(uuid.UUID(space_id), environments)


@pytest.fixture
def gateway_settings(
    database: str, nats_url: str, release_url: str, tmp_path: Path
) -> Callable[..., AgentGatewaySettings]:
    def make(**overrides: Any) -> AgentGatewaySettings:
        values: dict[str, Any] = {
            "database": {"url": database},
            "nats": {"url": nats_url},
            "messaging": {"outbox_poll_seconds": 0.1},
            "data_dir": tmp_path / "gateway",
            "polling_port": free_port(),
            "release_service_url": release_url,
            "status_poll_seconds": 0.05,
            "run_scan_seconds": 1.0,
            "pickup_timeout_seconds": WAIT_SECONDS,
        }
        values.update(overrides)
        return AgentGatewaySettings(**values)

    return make


@pytest.fixture
async def gateway(
    gateway_settings: Callable[..., AgentGatewaySettings],
) -> AsyncIterator[RunningGateway]:
    async with gateway_running(gateway_settings()) as running_gateway:
        yield running_gateway


@pytest.fixture
async def agent(tmp_path: Path) -> AsyncIterator[FakeAgent]:
    fake = FakeAgent(tmp_path / "agent")
    yield fake
    await fake.stop()


@pytest.fixture
async def events(nats_url: str, space: Space) -> AsyncIterator[StepEvents]:
    async with step_events(nats_url, space) as collected:
        yield collected


@pytest.fixture
async def orchestrator(nats_url: str) -> AsyncIterator[Orchestrator]:
    broker = NatsBroker(NatsSettings(url=nats_url), name="test-orchestrator")
    await broker.start()
    await broker.wait_connected(WAIT_SECONDS)
    yield Orchestrator(broker)
    await broker.close()
