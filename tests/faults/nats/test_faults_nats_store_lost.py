"""R4: NATS loses its store mid-deployment; the deployment still ends, nothing twice, nothing lost.

Real parts, all loopback: release-service, agent-gateway and deploy-orchestrator in this
process, two real agents (mutual TLS, polling), Postgres, and a NATS server of this suite's
own. While the first step's scripts run, nats-server is stopped, its JetStream directory
deleted, and it is started again empty: the services re-create streams and consumers without
a restart, and what the lost store held is fed again from PostgreSQL (the outboxes).
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fixtures import serve_gateway
from cephalo_agent_gateway.testing.harness import Space
from cephalo_common.contracts import (
    DEPLOYMENT_REQUESTED,
    DeploymentRequestedV1,
    ScriptActionSnapshot,
)
from cephalo_common.embedded import EmbeddedNats
from cephalo_common.messaging.envelope import new_envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import NatsSettings
from cephalo_common.testing import running
from cephalo_orchestrator.app import create_app as create_orchestrator
from cephalo_orchestrator.settings import OrchestratorSettings

pytestmark = pytest.mark.faults

AGENTS = 2
STEPS = ("First", "Second", "Third")
LINES = 6
OUTAGE_SECONDS = 2.0
TERMINAL = ("Success", "Failed", "Canceled", "TimedOut")


def script(runs_dir: Path) -> str:
    """Counts itself on the agent, then logs LINES numbered lines across the outage."""
    counter = f'"{runs_dir}/$CEPHALO_VAR_OCTOPUS_MACHINE_NAME"'
    return (
        f'echo "$CEPHALO_VAR_OCTOPUS_ACTION_NAME" >> {counter}\n'
        f'for i in $(seq 1 {LINES}); do echo "line $i"; sleep 0.3; done\n'
    )


def request(space: Space, runs_dir: Path) -> DeploymentRequestedV1:
    return DeploymentRequestedV1(
        deployment_id=str(uuid.uuid4()),
        release_id=str(uuid.uuid4()),
        release_version="1.0.0",
        project_id=str(uuid.uuid4()),
        project_name="store-lost",
        environment_id=str(space.environments["Production"]),
        environment_name="Production",
        steps=[
            ScriptActionSnapshot(
                id=str(uuid.uuid4()),
                name=name,
                action_type="cephalo.script",
                target_roles=["web"],
                properties={"script_body": script(runs_dir), "syntax": "bash"},
            )
            for name in STEPS
        ],
    )


@asynccontextmanager
async def orchestrator(database: str, nats_url: str, gateway_url: str) -> AsyncIterator[Any]:
    settings = OrchestratorSettings(
        database={"url": database},
        nats={"url": nats_url},
        messaging={"outbox_poll_seconds": 0.1, "consumer_ack_wait_seconds": 3},
        agent_gateway_url=gateway_url,
        task_poll_seconds=0.1,
        sweep_seconds=1.0,
        log_catch_up_seconds=5.0,
    )
    async with running(create_orchestrator(settings)) as client:
        yield client


async def lose_the_store(server: EmbeddedNats) -> None:
    """Stop nats-server, delete its JetStream directory, start it again empty."""
    await asyncio.to_thread(server.stop)
    shutil.rmtree(server.store_dir)
    await asyncio.sleep(OUTAGE_SECONDS)
    await asyncio.to_thread(server.start)


@pytest.mark.timeout(300)  # about 30 s on a quiet 2-core machine
async def test_a_deployment_survives_nats_losing_its_store(
    gateway_settings: Callable[..., AgentGatewaySettings],
    real_agents: Any,
    space: Space,
    database: str,
    nats_server: EmbeddedNats,
    tmp_path: Path,
) -> None:
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    settings = gateway_settings(status_poll_seconds=0.2)
    async with serve_gateway(settings) as served:
        for _ in range(AGENTS):
            await real_agents(served, space)
        async with orchestrator(database, nats_server.url, served.url) as client:
            deployment = request(space, runs_dir)
            await _request(nats_server.url, space, deployment)
            await _scripts_started(runs_dir, AGENTS)
            await lose_the_store(nats_server)
            task = await _finished(client, space, deployment.deployment_id)
            log = await _log(client, space, task["id"])
    _check(task, log, runs_dir)


def _check(task: dict[str, Any], log: list[dict[str, Any]], runs_dir: Path) -> None:
    where = f"{task['state']} {task['reason']}"
    assert task["state"] == "Success", where
    ran = Counter(
        (path.name, line) for path in runs_dir.iterdir() for line in path.read_text().splitlines()
    )
    assert len(ran) == AGENTS * len(STEPS), ran
    assert set(ran.values()) == {1}, ran
    per_target = Counter((run["step_name"], run["machine_name"]) for run in task["step_runs"])
    assert set(per_target.values()) == {1}, per_target
    by_run: dict[tuple[str, str], list[dict[str, Any]]] = {}
    ours: Counter[tuple[str, str | None, str | None]] = Counter()
    for line in log:
        if line["source"] in ("stdout", "stderr"):
            by_run.setdefault((line["step"], line["machine"]), []).append(line)
        else:
            ours[(line["text"], line["step"], line["machine"])] += 1
    assert [key for key, count in ours.items() if count > 1] == [], where
    assert len(by_run) == AGENTS * len(STEPS), by_run.keys()
    for key, lines in by_run.items():
        assert sorted(line["sequence"] for line in lines) == list(range(1, len(lines) + 1)), key
        texts = [line["text"] for line in lines if line["text"].startswith("line ")]
        assert texts == [f"line {n}" for n in range(1, LINES + 1)], key


async def _request(nats_url: str, space: Space, deployment: DeploymentRequestedV1) -> None:
    broker = NatsBroker(NatsSettings(url=nats_url), name="store-lost-deploy")
    await broker.start()
    try:
        await broker.wait_connected(30)
        envelope = new_envelope(
            source="cephalo://release-service",
            type=DEPLOYMENT_REQUESTED.type,
            space=str(space.id),
            data=deployment,
        )
        await broker.publish(DEPLOYMENT_REQUESTED.subject(str(space.id)), envelope)
    finally:
        await broker.close()


async def _scripts_started(runs_dir: Path, count: int) -> None:
    async with asyncio.timeout(120):
        while sum(len(path.read_text().splitlines()) for path in runs_dir.iterdir()) < count:
            await asyncio.sleep(0.05)


async def _finished(client: httpx.AsyncClient, space: Space, deployment_id: str) -> dict[str, Any]:
    url = f"/api/v1/spaces/{space.id}/tasks"
    async with asyncio.timeout(180):
        while True:
            listed = (await client.get(url, params={"deployment_id": deployment_id})).json()
            if listed and listed[0]["state"] in TERMINAL:
                return dict((await client.get(f"{url}/{listed[0]['id']}")).json())
            await asyncio.sleep(0.3)


async def _log(client: httpx.AsyncClient, space: Space, task_id: str) -> list[dict[str, Any]]:
    url = f"/api/v1/spaces/{space.id}/tasks/{task_id}/log"
    return list((await client.get(url, params={"limit": 10_000})).json())
