"""R4: NATS loses its store mid-deployment; the deployment still ends, nothing twice, nothing lost.

Real parts, all loopback: release-service, agent-gateway and deploy-orchestrator in this
process, two real agents (mutual TLS, polling), Postgres, and a NATS server of this suite's
own. While the first step's scripts run, nats-server is stopped, its JetStream directory
deleted, and it is started again empty: the services re-create streams and consumers without
a restart, and what the lost store held is fed again from PostgreSQL (the outboxes: rows not
yet published, and rows published shortly before the loss).
"""

from __future__ import annotations

import asyncio
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fault_deployments import (  # tests/faults, put on sys.path by the conftest
    check_log_once,
    counted_script,
    deployment,
    executions,
    finished,
    orchestrator,
    request,
    scripts_started,
    task_log,
)

from cephalo_agent_gateway.settings import AgentGatewaySettings
from cephalo_agent_gateway.testing.fixtures import serve_gateway
from cephalo_agent_gateway.testing.harness import Space
from cephalo_common.embedded import EmbeddedNats

pytestmark = pytest.mark.faults

AGENTS = 2
STEPS = ("First", "Second")  # the second is dispatched after the loss
LINES = 6
OUTAGE_SECONDS = 2.0


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
    async with serve_gateway(gateway_settings(status_poll_seconds=0.2)) as served:
        for _ in range(AGENTS):
            await real_agents(served, space)
        async with orchestrator(database, nats_server.url, served.url) as client:
            requested = deployment(space, STEPS, counted_script(runs_dir, LINES, 0.3))
            await request(nats_server.url, space, requested)
            await scripts_started(runs_dir, AGENTS)
            await lose_the_store(nats_server)
            task = await finished(client, space, requested.deployment_id)
            log = await task_log(client, space, task["id"])

    assert task["state"] == "Success", task["reason"]
    ran = executions(runs_dir)
    assert len(ran) == AGENTS * len(STEPS) and set(ran.values()) == {1}, ran
    per_target = Counter((run["step_name"], run["machine_name"]) for run in task["step_runs"])
    assert len(per_target) == AGENTS * len(STEPS) and set(per_target.values()) == {1}
    check_log_once(task, log, LINES)
