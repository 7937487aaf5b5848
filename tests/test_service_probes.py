"""Every service's readiness follows its dependencies, each built by its own `create_app`.

Each test owns its PostgreSQL or NATS server so it can stop and restart it freely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cephalo_agent_gateway.app import create_app as agent_gateway_app
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_common.db.migrations import upgrade
from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cephalo_common.testing import running
from cephalo_feed.app import create_app as feed_app
from cephalo_feed.settings import FeedSettings
from cephalo_gateway.app import create_app as gateway_app
from cephalo_gateway.settings import GatewaySettings
from cephalo_orchestrator.app import create_app as orchestrator_app
from cephalo_orchestrator.settings import OrchestratorSettings
from cephalo_release.app import create_app as release_app
from cephalo_release.settings import ReleaseSettings

AppFactory = Callable[[str, str, Path], FastAPI]
PACKAGES = (
    "cephalo_release",
    "cephalo_orchestrator",
    "cephalo_feed",
    "cephalo_agent_gateway",
    "cephalo_gateway",
)


def _common(database_url: str, nats_url: str) -> dict[str, Any]:
    return {"database": {"url": database_url}, "nats": {"url": nats_url}}


SERVICES: dict[str, AppFactory] = {
    "release-service": lambda db, nats, _: release_app(ReleaseSettings(**_common(db, nats))),
    "deploy-orchestrator": lambda db, nats, _: orchestrator_app(
        OrchestratorSettings(**_common(db, nats))
    ),
    "package-feed": lambda db, nats, tmp: feed_app(
        FeedSettings(**_common(db, nats), storage_dir=tmp / "packages")
    ),
    "agent-gateway": lambda db, nats, tmp: agent_gateway_app(
        AgentGatewaySettings(
            **_common(db, nats), data_dir=tmp / "agent-gateway", polling_port=free_port()
        )
    ),
    "api-gateway": lambda db, nats, _: gateway_app(GatewaySettings(**_common(db, nats))),
}


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    tmp_path.chmod(0o755)
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), durable=False)
    url = server.start()
    for package in PACKAGES:
        upgrade(package, url)
    yield server
    server.stop()


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    server = EmbeddedNats(tmp_path / "nats", free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def migrated(migrate: Callable[[str], str]) -> str:
    for package in PACKAGES:
        migrate(package)
    return migrate("cephalo_release")


async def readiness(client: httpx.AsyncClient, status: int, timeout: float = 30) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while (response := await client.get("/readyz")).status_code != status:
            await asyncio.sleep(0.1)
    return dict(response.json()["checks"])


@pytest.mark.parametrize("service", SERVICES)
async def test_readiness_follows_postgres(
    service: str, own_postgres: EmbeddedPostgres, nats_url: str, tmp_path: Path
) -> None:
    app = SERVICES[service](own_postgres.url(), nats_url, tmp_path)
    async with running(app) as client:
        own_postgres.stop()
        checks = await readiness(client, 503)
        assert checks["database"].startswith("unavailable")
        assert (await client.get("/livez")).status_code == 200
        own_postgres.start()
        await readiness(client, 200)


@pytest.mark.parametrize("service", SERVICES)
async def test_readiness_follows_nats(
    service: str, migrated: str, own_nats: EmbeddedNats, tmp_path: Path
) -> None:
    app = SERVICES[service](migrated, own_nats.url, tmp_path)
    async with running(app) as client:
        own_nats.stop()
        checks = await readiness(client, 503)
        assert checks["nats"] == "unavailable"
        own_nats.start()
        await readiness(client, 200)
        metrics = await client.get("/metrics")
        assert metrics.status_code == 200 and "cephalo_http_requests_total" in metrics.text
