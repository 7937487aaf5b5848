"""Deployments for the in-process fault suites (tests/faults/nats, tests/faults/blackhole).

release-service, agent-gateway and deploy-orchestrator run in the test's process, real agents
beside them; a deployment is requested on NATS as release-service would, and its task read
from the orchestrator's API. A conftest puts this directory on `sys.path`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from cephalo_agent_gateway.testing.harness import Space
from cephalo_common.contracts import (
    DEPLOYMENT_REQUESTED,
    DeploymentRequestedV1,
    ScriptActionSnapshot,
)
from cephalo_common.messaging.envelope import new_envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import NatsSettings
from cephalo_common.testing import running
from cephalo_orchestrator.app import create_app as create_orchestrator
from cephalo_orchestrator.settings import OrchestratorSettings

TERMINAL = ("Success", "Failed", "Canceled", "TimedOut")


def counted_script(runs_dir: Path, lines: int, pause: float) -> str:
    """Counts itself in a file per machine, then logs `lines` numbered lines slowly."""
    counter = f'"{runs_dir}/$CEPHALO_VAR_OCTOPUS_MACHINE_NAME"'
    return (
        f'echo "$CEPHALO_VAR_OCTOPUS_ACTION_NAME" >> {counter}\n'
        f'for i in $(seq 1 {lines}); do echo "line $i"; sleep {pause}; done\n'
    )


def deployment(
    space: Space, steps: tuple[str, ...], script: str, role: str = "web"
) -> DeploymentRequestedV1:
    return DeploymentRequestedV1(
        deployment_id=str(uuid.uuid4()),
        release_id=str(uuid.uuid4()),
        release_version="1.0.0",
        project_id=str(uuid.uuid4()),
        project_name="faults",
        environment_id=str(space.environments["Production"]),
        environment_name="Production",
        steps=[
            ScriptActionSnapshot(
                id=str(uuid.uuid4()),
                name=name,
                action_type="cephalo.script",
                target_roles=[role],
                properties={"script_body": script, "syntax": "bash"},
            )
            for name in steps
        ],
    )


@asynccontextmanager
async def orchestrator(
    database: str, nats_url: str, gateway_url: str, **overrides: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """deploy-orchestrator in this process, polling quickly; yields its API client."""
    values: dict[str, Any] = {
        "database": {"url": database},
        "nats": {"url": nats_url},
        "messaging": {"outbox_poll_seconds": 0.1, "consumer_ack_wait_seconds": 3},
        "agent_gateway_url": gateway_url,
        "task_poll_seconds": 0.1,
        "sweep_seconds": 1.0,
        "log_catch_up_seconds": 5.0,
    }
    values.update(overrides)
    async with running(create_orchestrator(OrchestratorSettings(**values))) as client:
        yield client


async def request(
    nats: str | dict[str, Any], space: Space, requested: DeploymentRequestedV1
) -> None:
    """Publish `deployment.requested` as release-service's relay would (`nats`: the URL, or
    the services' NATS settings when they differ from the defaults)."""
    settings = NatsSettings(url=nats) if isinstance(nats, str) else NatsSettings(**nats)
    broker = NatsBroker(settings, name="fault-deployments")
    await broker.start()
    try:
        await broker.wait_connected(30)
        envelope = new_envelope(
            source="cephalo://release-service",
            type=DEPLOYMENT_REQUESTED.type,
            space=str(space.id),
            data=requested,
        )
        await broker.publish(DEPLOYMENT_REQUESTED.subject(str(space.id)), envelope)
    finally:
        await broker.close()


async def scripts_started(runs_dir: Path, count: int, timeout: float = 120) -> None:
    """Until `count` scripts have counted themselves in `runs_dir`."""
    async with asyncio.timeout(timeout):
        while sum(len(path.read_text().splitlines()) for path in runs_dir.iterdir()) < count:
            await asyncio.sleep(0.05)


def executions(runs_dir: Path) -> Counter[tuple[str, str]]:
    """(machine, step) → how many times the script ran there."""
    return Counter(
        (path.name, line) for path in runs_dir.iterdir() for line in path.read_text().splitlines()
    )


async def finished(
    client: httpx.AsyncClient, space: Space, deployment_id: str, timeout: float = 180
) -> dict[str, Any]:
    url = f"/api/v1/spaces/{space.id}/tasks"
    async with asyncio.timeout(timeout):
        while True:
            listed = (await client.get(url, params={"deployment_id": deployment_id})).json()
            if listed and listed[0]["state"] in TERMINAL:
                return dict((await client.get(f"{url}/{listed[0]['id']}")).json())
            await asyncio.sleep(0.3)


async def task_log(client: httpx.AsyncClient, space: Space, task_id: str) -> list[dict[str, Any]]:
    url = f"/api/v1/spaces/{space.id}/tasks/{task_id}/log"
    return list((await client.get(url, params={"limit": 10_000})).json())


def check_log_once(task: dict[str, Any], log: list[dict[str, Any]], lines: int) -> None:
    """Every line of ours once; per step run, the agent's lines numbered without gaps and
    each `line n` exactly once."""
    by_run: dict[tuple[str, str], list[dict[str, Any]]] = {}
    ours: Counter[tuple[str, str | None, str | None]] = Counter()
    for line in log:
        if line["source"] in ("stdout", "stderr"):
            by_run.setdefault((line["step"], line["machine"]), []).append(line)
        else:
            ours[(line["text"], line["step"], line["machine"])] += 1
    assert [key for key, count in ours.items() if count > 1] == []
    for run in task["step_runs"]:
        key = (run["step_name"], run["machine_name"])
        got = by_run.get(key, [])
        assert sorted(line["sequence"] for line in got) == list(range(1, len(got) + 1)), key
        texts = [line["text"] for line in got if line["text"].startswith("line ")]
        notes = [
            line["text"] for line in log if line["machine"] == key[1] and line["step"] == key[0]
        ]
        assert texts == [f"line {n}" for n in range(1, lines + 1)], (key, notes)
