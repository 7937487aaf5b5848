"""Readiness follows the dependencies: 503 while Postgres or NATS is down, 200 once back."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cephalo_common.embedded import EmbeddedNats, EmbeddedPostgres, free_port
from cephalo_common.http.app import ServiceDefinition, create_service_app
from cephalo_common.settings import ServiceSettings
from cephalo_common.testing import running, wait_until_ready


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    tmp_path.chmod(0o755)
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), durable=False)
    server.start()
    yield server
    server.stop()


async def wait_for_status(
    client: httpx.AsyncClient, status: int, timeout: float = 20.0
) -> dict[str, object]:
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get("/readyz")
            if response.status_code == status:
                return dict(response.json())
            await asyncio.sleep(0.1)


def probe_app(database_url: str, nats_url: str) -> httpx.AsyncClient:
    settings = ServiceSettings(database={"url": database_url}, nats={"url": nats_url})
    return create_service_app(ServiceDefinition(name="probe-test", settings=settings))  # type: ignore[return-value]


async def test_readyz_is_503_while_postgres_is_down_and_200_when_it_returns(
    own_postgres: EmbeddedPostgres, nats_url: str
) -> None:
    async with running(probe_app(own_postgres.url(), nats_url)) as client:  # type: ignore[arg-type]
        own_postgres.stop()
        body = await wait_for_status(client, 503)
        assert str(body["checks"]["database"]).startswith("unavailable")  # type: ignore[index]
        assert (await client.get("/livez")).status_code == 200
        own_postgres.start()
        await wait_for_status(client, 200)


async def test_readyz_is_503_while_nats_is_down_and_200_when_it_returns(
    database_url: str, own_nats: EmbeddedNats
) -> None:
    async with running(probe_app(database_url, own_nats.url)) as client:  # type: ignore[arg-type]
        own_nats.stop()
        body = await wait_for_status(client, 503)
        assert body["checks"]["nats"] == "unavailable"  # type: ignore[index]
        own_nats.start()
        await wait_for_status(client, 200)


async def test_a_service_started_before_its_dependencies_becomes_ready_when_they_appear(
    tmp_path: Path,
) -> None:
    tmp_path.chmod(0o755)
    postgres = EmbeddedPostgres(tmp_path / "pg", free_port(), durable=False)
    nats_server = EmbeddedNats(tmp_path / "nats", free_port())
    try:
        async with running(probe_app(postgres.url(), nats_server.url), ready=False) as client:  # type: ignore[arg-type]
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/livez")).status_code == 200
            postgres.start()
            nats_server.start()
            await wait_until_ready(client, timeout=30)
    finally:
        postgres.stop()
        nats_server.stop()


async def test_metrics_are_prometheus_text(database_url: str, nats_url: str) -> None:
    async with running(probe_app(database_url, nats_url)) as client:  # type: ignore[arg-type]
        await client.get("/livez")
        metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert 'cephalo_http_requests_total{method="GET",route="/livez",status="200"}' in metrics.text


async def test_an_unknown_route_is_a_problem_not_a_bare_404(
    database_url: str, nats_url: str
) -> None:
    async with running(probe_app(database_url, nats_url)) as client:  # type: ignore[arg-type]
        response = await client.get("/nothing-here")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 404
