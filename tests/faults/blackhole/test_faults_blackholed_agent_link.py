"""R6: the agent's link is blackholed during a step (open connection, every byte dropped).

Real parts, all loopback: release-service, agent-gateway and deploy-orchestrator in this
process, one real polling agent whose connection runs through a proxy that, once the step's
script runs, drops every byte both ways while keeping the connection open, and accepts (and
blackholes) the agent's reconnections. The gateway's keep-alive notices, the run waits for
the agent to come back for its pickup budget, the step fails with the unreachable error and
the task with it. With the link restored, the next deployment to the same machine runs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from blackhole_proxy import BlackholeProxy  # tests/faults, on sys.path (the conftest)
from fault_deployments import (  # tests/faults, put on sys.path by the conftest
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
from cephalo_agent_gateway.testing.harness import Space, eventually

pytestmark = pytest.mark.faults

PICKUP_SECONDS = 8.0
RPC_SECONDS = 3.0
PING_SECONDS = 1.0
WAIT_SECONDS = 1.0  # held start/status calls stay below the short RPC timeout
# keep-alive notices + one RPC timeout + the pickup budget, and room for a loaded machine
BUDGET_SECONDS = 2 * PING_SECONDS + RPC_SECONDS + PICKUP_SECONDS + 20
UNREACHABLE = ("did not reconnect within", "did not connect within")


@pytest.mark.timeout(300)  # about 40 s on a quiet 2-core machine
async def test_a_blackholed_link_fails_the_step_and_the_next_deployment_proceeds(
    gateway_settings: Callable[..., AgentGatewaySettings],
    real_agents: Any,
    space: Space,
    database: str,
    nats_url: str,
    tmp_path: Path,
) -> None:
    settings = gateway_settings(
        status_poll_seconds=0.2,
        pickup_timeout_seconds=PICKUP_SECONDS,
        rpc_timeout_seconds=RPC_SECONDS,
        start_wait_seconds=WAIT_SECONDS,
        status_wait_seconds=WAIT_SECONDS,
        polling_ping_interval_seconds=PING_SECONDS,
        polling_ping_timeout_seconds=PING_SECONDS * 2,
    )
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    async with serve_gateway(settings) as served, BlackholeProxy(settings.polling_port) as proxy:
        agent = await real_agents(
            served, space, polling_endpoint=f"wss://127.0.0.1:{proxy.port}/poll"
        )
        machine = uuid.UUID(agent.machine_id)
        await eventually(lambda: served.gateway.connections.is_connected(machine))
        async with orchestrator(database, nats_url, served.url) as client:
            cut = deployment(space, ("Cut",), counted_script(runs_dir, 40, 0.25))
            await request(nats_url, space, cut)
            await scripts_started(runs_dir, 1)
            proxy.blackhole()
            blackholed_at = time.monotonic()
            failed = await finished(client, space, cut.deployment_id, timeout=120)
            took = time.monotonic() - blackholed_at
            log = await task_log(client, space, failed["id"])

            proxy.restore()
            await eventually(lambda: served.gateway.connections.is_connected(machine))
            later = deployment(space, ("Later",), counted_script(runs_dir, 2, 0.05))
            await request(nats_url, space, later)
            succeeded = await finished(client, space, later.deployment_id, timeout=120)

    name = agent.agent.config.machine_name
    assert failed["state"] == "Failed", failed
    assert failed["reason"] == f'Step "Cut" failed on {name} (no exit code)', failed["reason"]
    # The link went dark while the start call was held (status-wait): the gateway cannot tell
    # whether the script began, reports the machine unreachable, and the orchestrator's pickup
    # retries find it unreachable too; the agent's ticket journal still runs the script once.
    runs = failed["step_runs"]
    assert runs and all(r["state"] == "Failed" for r in runs), runs
    assert all(any(u in (r["error"] or "") for u in UNREACHABLE) for r in runs), runs
    assert any(u in line["text"] for line in log for u in UNREACHABLE), "no reason in the log"
    assert took < BUDGET_SECONDS, f"failed {took:.1f} s after the link went dark"
    assert succeeded["state"] == "Success", succeeded
    assert executions(runs_dir) == {(name, "Cut"): 1, (name, "Later"): 1}
