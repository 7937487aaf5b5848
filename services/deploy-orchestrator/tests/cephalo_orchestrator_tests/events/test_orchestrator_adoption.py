"""A task whose instance stopped (its lease ran out) is adopted by another, on real Postgres
and NATS, agent-gateway faked over HTTP: a run the gateway finished long ago is taken as
finished, a run it never heard of fails with `orchestrator-lost`, a running one is left to
report; nothing is dispatched again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from nats.aio.client import Client

from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.testing import running
from cephalo_orchestrator.app import create_app
from cephalo_orchestrator.settings import OrchestratorSettings

from ..fakes import FakeAgentGateway
from ..flow import (
    Dispatches,
    Scenario,
    add_targets,
    log_texts,
    report_finished,
    request_deployment,
    step,
    wait_for_task,
)

QUICK_LEASE = {"lease_seconds": 1.0, "lost_dispatch_seconds": 1.0, "sweep_seconds": 0.2}


def finished_long_ago(exit_code: int) -> dict[str, object]:
    return {
        "state": "Complete",
        "exit_code": exit_code,
        "error": None,
        "last_log_sequence": 0,
        "finished_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
    }


@pytest.mark.timeout(120)
async def test_an_orphaned_task_is_adopted_and_its_runs_settled(
    make_settings: Callable[..., OrchestratorSettings],
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    add_targets(fake_gateway, scenario, "web-01", "web-02", "web-03")
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy", ["web"])])
    async with running(create_app(make_settings(**QUICK_LEASE))) as first:
        await request_deployment(broker, scenario.space, request)
        sent = {dispatch.ticket: dispatch for dispatch in await dispatches.take(3)}
        task = await wait_for_task(first, scenario, request.deployment_id, "Executing")
    by_machine = {run["machine_name"]: run["ticket"] for run in task["step_runs"]}
    fake_gateway.script_runs[by_machine["web-01"]] = finished_long_ago(0)
    fake_gateway.script_runs[by_machine["web-02"]] = {"state": "Running", "last_log_sequence": 0}

    async with running(create_app(make_settings(**QUICK_LEASE))) as second:
        settled = await _settled(second, scenario, request.deployment_id)
        states = {run["machine_name"]: run["state"] for run in settled["step_runs"]}
        assert states["web-02"] == "Pending"
        assert settled["state"] == "Executing"
        await report_finished(broker, scenario.space, sent[by_machine["web-02"]], exit_code=0)
        done = await wait_for_task(second, scenario, request.deployment_id, "Failed")
        texts = await log_texts(second, scenario, str(done["id"]))
    await dispatches.expect_none()
    await dispatches.close()

    assert "orchestrator-lost" in (done["reason"] or ""), done
    assert len(done["step_runs"]) == 3, "no step was dispatched again"
    lost = next(run for run in done["step_runs"] if run["machine_name"] == "web-03")
    assert lost["error"].startswith("orchestrator-lost: agent-gateway never received Deploy")
    assert sum("took over this task" in text for text in texts) == 1


async def _settled(client: Any, scenario: Scenario, deployment_id: str) -> dict[str, Any]:
    """The task once the finished run was taken and the lost one failed."""
    async with asyncio.timeout(30):
        while True:
            task = await wait_for_task(client, scenario, deployment_id)
            states = {run["machine_name"]: run["state"] for run in task["step_runs"]}
            if states["web-01"] == "Success" and states["web-03"] == "Failed":
                return task
            await asyncio.sleep(0.1)
