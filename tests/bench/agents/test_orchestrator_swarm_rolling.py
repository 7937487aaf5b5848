"""A rolling deployment to a swarm of 20 real agents: the orchestrator, the real agent-gateway
and real agents (mutual TLS, polling), on real Postgres and NATS, all loopback.

The window of 5 is checked on the agents' own clock: each script prints when it starts and
ends, and at no moment do more than 5 scripts of the rolling step overlap. No timing is
asserted. Output variables flowing between steps are covered at the NATS level
(services/deploy-orchestrator .../test_orchestrator_execution.py): agent-gateway does not
report them yet.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from swarm import Swarm  # tests/bench, put on sys.path by the conftest

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
from cephalo_orchestrator.app import create_app
from cephalo_orchestrator.settings import OrchestratorSettings

AGENTS = 20
WINDOW = 5
SCRIPT = 'echo "start $(date +%s.%N)"\nsleep 0.3\necho "end $(date +%s.%N)"\n'


def action(name: str, body: str, **properties: Any) -> ScriptActionSnapshot:
    return ScriptActionSnapshot(
        id=str(uuid.uuid4()),
        name=name,
        action_type="cephalo.script",
        target_roles=["swarm"],
        properties={"script_body": body, "syntax": "bash", **properties},
    )


def max_overlap(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    current = peak = 0
    for _, delta in edges:
        current += delta
        peak = max(peak, current)
    return peak


@pytest.fixture(scope="session")
def orchestrator_database(migrate: Callable[[str], str]) -> str:
    """Migrated outside the event loop (Alembic runs its own)."""
    return migrate("cephalo_orchestrator")


@pytest.mark.timeout(400)
async def test_a_rolling_deployment_to_twenty_agents_keeps_its_window(
    served: Any,
    space: Space,
    orchestrator_database: str,
    nats_url: str,
    tmp_path: Path,
) -> None:
    settings = OrchestratorSettings(
        database={"url": orchestrator_database},
        nats={"url": nats_url},
        messaging={"outbox_poll_seconds": 0.1},
        agent_gateway_url=served.url,
        task_poll_seconds=0.1,
    )
    request = DeploymentRequestedV1(
        deployment_id=str(uuid.uuid4()),
        release_id=str(uuid.uuid4()),
        release_version="1.0.0",
        project_id=str(uuid.uuid4()),
        project_name="Swarm",
        environment_id=str(space.environments["Production"]),
        environment_name="Production",
        steps=[
            action("Roll", SCRIPT, window_size=WINDOW),
            action("After", 'echo "after on $CEPHALO_VAR_OCTOPUS_MACHINE_NAME"'),
        ],
    )
    swarm = Swarm(tmp_path / "swarm", served.url, str(space.id))
    broker = NatsBroker(NatsSettings(url=nats_url), name="swarm-deploy")
    try:
        await swarm.add(AGENTS, mode="polling")
        await swarm.start()
        await swarm.wait_connected(timeout=180)
        await broker.start()
        await broker.wait_connected(30)
        async with running(create_app(settings)) as client:
            envelope = new_envelope(
                source="cephalo://release-service",
                type=DEPLOYMENT_REQUESTED.type,
                space=str(space.id),
                data=request,
            )
            await broker.publish(DEPLOYMENT_REQUESTED.subject(str(space.id)), envelope)
            task = await _finished_task(client, space, request.deployment_id)
            log = (
                await client.get(
                    f"/api/v1/spaces/{space.id}/tasks/{task['id']}/log", params={"limit": 10_000}
                )
            ).json()
    finally:
        await broker.close()
        await swarm.stop()

    assert task["state"] == "Success", task
    runs = task["step_runs"]
    assert len(runs) == 2 * AGENTS and {run["state"] for run in runs} == {"Success"}
    spans: dict[str, list[float]] = {}
    for line in log:
        if line["step"] == "Roll" and line["text"].split()[0] in ("start", "end"):
            spans.setdefault(line["machine"], []).append(float(line["text"].split()[1]))
    assert len(spans) == AGENTS
    assert max_overlap([(s[0], s[1]) for s in spans.values()]) <= WINDOW
    after = [
        line for line in log if line["step"] == "After" and line["text"].startswith("after on")
    ]
    assert sorted(line["text"] for line in after) == sorted(
        f"after on {machine}" for machine in spans
    )


async def _finished_task(client: Any, space: Space, deployment_id: str) -> dict[str, Any]:
    url = f"/api/v1/spaces/{space.id}/tasks"
    async with asyncio.timeout(300):
        while True:
            listed = (await client.get(url, params={"deployment_id": deployment_id})).json()
            if listed and listed[0]["state"] in ("Success", "Failed", "Canceled"):
                return dict((await client.get(f"{url}/{listed[0]['id']}")).json())
            await asyncio.sleep(0.2)
