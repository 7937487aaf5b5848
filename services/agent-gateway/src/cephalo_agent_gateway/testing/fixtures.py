"""pytest fixtures for agent-gateway's suites (service tests, fault and bench suites).

Everything is real: Postgres, NATS JetStream, release-service (served by uvicorn, because
the gateway calls it over HTTP), mutual TLS on the polling and listening ports, the real
agent (`cephalo_agent`) in this process. A conftest re-exports the fixtures it needs:

    from cephalo_agent_gateway.testing.fixtures import space, served, ...  # noqa: F401
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cephalo_agent.config import AgentPaths, load_config, save_config
from cephalo_agent.polling import PollingSettings
from cephalo_agent.registration import register
from cephalo_agent.runner import Agent, AgentSettings, build_agent
from cephalo_agent.scripts import ScriptSettings
from cephalo_agent_gateway.app import create_app
from cephalo_agent_gateway.runtime import Gateway, gateway_of
from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import (
    WAIT_SECONDS,
    Orchestrator,
    RunningGateway,
    Space,
    StepEvents,
    eventually,
    gateway_running,
    step_events,
    unique,
)
from cephalo_common.agent_protocol import ScriptTicketRequest
from cephalo_common.embedded import free_port
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import NatsSettings
from cephalo_common.testing import serving
from cephalo_common.urls import LOOPBACK
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
            "run_heartbeat_seconds": 0.5,
            "pickup_timeout_seconds": WAIT_SECONDS,
            "health_scan_seconds": 3600.0,
            "route_probe_seconds": 0.2,
            "outbound": {"allow": list(LOOPBACK)},
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


# -- the real agent (cephalo_agent) against a gateway served over real HTTP ----------------


@dataclass
class ServedGateway:
    """A gateway served by uvicorn: the real agent registers with plain HTTP."""

    url: str
    app: FastAPI
    settings: AgentGatewaySettings

    @property
    def gateway(self) -> Gateway:
        return gateway_of(self.app.state.runtime)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=30)


@dataclass
class RealAgent:
    paths: AgentPaths
    agent: Agent
    agent_settings: AgentSettings
    task: asyncio.Task[None] | None = None

    @property
    def machine_id(self) -> str:
        assert self.agent.config.machine_id is not None
        return self.agent.config.machine_id

    async def start(self) -> None:
        self.task = asyncio.create_task(self.agent.serve())
        if self.agent.polling is not None:
            await asyncio.wait_for(self.agent.polling.connected.wait(), WAIT_SECONDS)
        else:
            assert self.agent.listening is not None
            await eventually(
                lambda: self.agent.listening is not None and self.agent.listening._server
            )

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
            self.task = None
        for ticket in self.agent.scripts.active_tickets():
            await self.agent.scripts.cancel_script(ScriptTicketRequest(ticket=ticket))
        await self.agent.aclose()


QUICK_AGENT = AgentSettings(
    polling=PollingSettings(
        initial_backoff_seconds=0.05,
        max_backoff_seconds=0.2,
        open_timeout_seconds=2,
        introduce_interval_seconds=0.5,
    ),
    scripts=ScriptSettings(kill_grace_seconds=1.0, drain_seconds=0.5, orphan_poll_seconds=0.05),
)


@asynccontextmanager
async def serve_gateway(settings: AgentGatewaySettings) -> AsyncIterator[ServedGateway]:
    app = create_app(settings)
    async with serving(app, lifespan="on") as url:
        served = ServedGateway(url, app, settings)
        await asyncio.wait_for(served.gateway.listener.serving.wait(), WAIT_SECONDS)
        await served.gateway.bus.wait_connected(WAIT_SECONDS)
        yield served


@pytest.fixture
async def served(
    gateway_settings: Callable[..., AgentGatewaySettings],
) -> AsyncIterator[ServedGateway]:
    async with serve_gateway(gateway_settings()) as running_gateway:
        yield running_gateway


@pytest.fixture
def serve_another_gateway(
    gateway_settings: Callable[..., AgentGatewaySettings],
) -> Callable[..., Any]:
    """`async with serve_another_gateway(**overrides) as served:` (a second replica...)."""

    def make(**overrides: Any) -> Any:
        return serve_gateway(gateway_settings(**overrides))

    return make


@pytest.fixture
async def real_agents(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """`await real_agents(served, space, mode=..., **register_kwargs)` → a started RealAgent.

    Registers with the real `register()` (as `cephalo-agent register` does), then serves in
    this process; every agent made is stopped at the end of the test.
    """
    made: list[RealAgent] = []

    async def make(
        served: ServedGateway,
        space: Space,
        *,
        mode: str = "polling",
        start: bool = True,
        settings: AgentSettings = QUICK_AGENT,
        polling_endpoint: str | None = None,
        **kwargs: Any,
    ) -> RealAgent:
        paths = AgentPaths(tmp_path / unique("agent"))
        options: dict[str, Any] = {
            "name": unique("real"),
            "environments": ["Production"],
            "roles": ["web"],
        }
        if mode == "listening":
            port = free_port()
            options.update(listening_url=f"https://127.0.0.1:{port}", listen_host="127.0.0.1")
        options.update(kwargs)
        if options.get("worker_pools"):
            options["environments"] = []
        await asyncio.to_thread(
            register, paths, server_url=served.url, space=str(space.id), mode=mode, **options
        )
        if polling_endpoint is not None:  # e.g. through a fault proxy
            config = load_config(paths).model_copy(update={"polling_endpoint": polling_endpoint})
            save_config(paths, config)
        real = RealAgent(paths, build_agent(paths, settings), settings)
        made.append(real)
        if start:
            await real.start()
            if mode == "polling" and polling_endpoint is None:  # the gateway attached it too
                machine_id = uuid.UUID(real.machine_id)
                await eventually(lambda: served.gateway.connections.is_connected(machine_id))
        return real

    yield make
    for real in made:
        await real.stop()
