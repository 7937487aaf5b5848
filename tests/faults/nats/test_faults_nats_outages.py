"""R3 and R4 mid-deployment: NATS down longer than the de-duplication window, then NATS losing
its store; the deployment still ends, nothing runs twice, no log line is lost or doubled.

Real parts, all loopback: release-service, agent-gateway and deploy-orchestrator in this
process, two real agents (mutual TLS, polling), Postgres, and a NATS server of this suite's
own with the streams' de-duplication window shortened to WINDOW_SECONDS (a setting), so an
outage longer than it is cheap. One deployment of three steps:

- while the first step's scripts run, nats-server is SIGKILLed and started again (store kept)
  after WINDOW_SECONDS + 2 s: events written meanwhile wait in the outboxes; one republished
  after the window is no longer de-duplicated by the stream, only by the consumers;
- while the second step's run, nats-server is stopped, its JetStream directory deleted, and
  it is started again empty: the services re-create streams and consumers without a restart,
  and what the lost store held is fed again from PostgreSQL (the outboxes: rows not yet
  published, and rows published shortly before the loss);
- the third step is dispatched on the new store.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
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
STEPS = ("First", "Second", "Third")
LINES = 6
WINDOW_SECONDS = 2.0  # the conftest gives every service this de-duplication window


async def kill_past_the_window(server: EmbeddedNats) -> None:
    """SIGKILL nats-server, keep its store, start it again once the window has passed."""
    assert server.process is not None
    os.killpg(server.process.pid, signal.SIGKILL)
    await asyncio.to_thread(server.process.wait, 30)
    server.process = None
    await asyncio.sleep(WINDOW_SECONDS + 2)
    await asyncio.to_thread(server.start)


async def lose_the_store(server: EmbeddedNats) -> None:
    """Stop nats-server, delete its JetStream directory, start it again empty."""
    await asyncio.to_thread(server.stop)
    shutil.rmtree(server.store_dir)
    await asyncio.sleep(1)
    await asyncio.to_thread(server.start)


@pytest.mark.timeout(400)  # about 45 s on a quiet 2-core machine
async def test_a_deployment_survives_a_long_nats_outage_and_a_lost_store(
    gateway_settings: Callable[..., AgentGatewaySettings],
    real_agents: Any,
    space: Space,
    database: str,
    nats_server: EmbeddedNats,
    nats_settings: dict[str, Any],
    tmp_path: Path,
) -> None:
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    settings = gateway_settings(status_poll_seconds=0.2, nats=nats_settings)
    async with serve_gateway(settings) as served:
        for _ in range(AGENTS):
            await real_agents(served, space)
        async with orchestrator(database, nats_server.url, served.url, nats=nats_settings) as api:
            requested = deployment(space, STEPS, counted_script(runs_dir, LINES, 0.3))
            await request(nats_settings, space, requested)
            await scripts_started(runs_dir, AGENTS)
            await kill_past_the_window(nats_server)
            await scripts_started(runs_dir, 2 * AGENTS)
            await lose_the_store(nats_server)
            task = await finished(api, space, requested.deployment_id)
            log = await task_log(api, space, task["id"])

    assert task["state"] == "Success", task["reason"]
    ran = executions(runs_dir)
    assert len(ran) == AGENTS * len(STEPS) and set(ran.values()) == {1}, ran
    per_target = Counter((run["step_name"], run["machine_name"]) for run in task["step_runs"])
    assert len(per_target) == AGENTS * len(STEPS) and set(per_target.values()) == {1}
    check_log_once(task, log, LINES)
