"""When agent-gateway cannot be asked for machines: the task keeps Executing and retries with
back-off, then fails with the reason once the retry budget is spent."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from nats.aio.client import Client

from cephalo_common.embedded import free_port
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.testing import running
from cephalo_orchestrator.app import create_app
from cephalo_orchestrator.settings import OrchestratorSettings

from ..fakes import FakeAgentGateway
from ..flow import (
    Dispatches,
    Scenario,
    log_texts,
    request_deployment,
    step,
    task_log,
    wait_for_task,
)


async def test_a_gateway_that_answers_again_gets_the_step_dispatched(
    settings: OrchestratorSettings,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    fake_gateway.fail_next(scenario.space_id, 2)
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy web", ["web"])])
    async with running(create_app(settings)) as client:
        await request_deployment(broker, scenario.space, request)
        (dispatch,) = await dispatches.take(1)
        task = await wait_for_task(client, scenario, request.deployment_id, "Executing")
        log = await task_log(client, scenario, task["id"])
    assert fake_gateway.calls[scenario.space] == 3
    assert dispatch.task_id == task["id"]
    retrying = [line for line in log if line["text"].endswith("retrying")]
    assert len(retrying) == 1 and retrying[0]["source"] == "error"
    assert "answered 503" in retrying[0]["text"]
    await dispatches.close()


async def test_an_unreachable_gateway_fails_the_task_after_the_retry_budget(
    make_settings: Callable[..., OrchestratorSettings], broker: NatsBroker
) -> None:
    scenario = Scenario()
    settings = make_settings(
        agent_gateway_url=f"http://127.0.0.1:{free_port()}",
        agent_gateway_timeout_seconds=0.5,
        step_start_retry_seconds=1.5,
    )
    request = scenario.request([step("Deploy web", ["web"])])
    async with running(create_app(settings)) as client:
        await request_deployment(broker, scenario.space, request)
        executing = await wait_for_task(client, scenario, request.deployment_id, "Executing")
        assert executing["reason"] is None
        failed = await wait_for_task(client, scenario, request.deployment_id, "Failed")
        texts = await log_texts(client, scenario, failed["id"])
    assert failed["reason"].startswith("Could not find the deployment targets: ")
    assert "is unreachable" in failed["reason"]
    assert failed["reason"].endswith("(gave up after 1.5 seconds)")
    assert texts[-1] == failed["reason"]


async def test_the_tasks_gauge_counts_tasks_by_state(
    settings: OrchestratorSettings, broker: NatsBroker
) -> None:
    scenario = Scenario()
    request = scenario.request([step("Deploy web", ["web"])])
    async with running(create_app(settings)) as client:
        await request_deployment(broker, scenario.space, request)
        await wait_for_task(client, scenario, request.deployment_id, "Failed")
        metrics = await _metrics_once_failed(client)
    assert 'cephalo_orchestrator_tasks{state="Queued"}' in metrics
    assert 'cephalo_orchestrator_tasks{state="TimedOut"} 0.0' in metrics


async def _metrics_once_failed(client: httpx.AsyncClient) -> str:
    """The exposition once the gauge has caught up with at least one failed task."""
    prefix = 'cephalo_orchestrator_tasks{state="Failed"} '
    async with asyncio.timeout(10):
        while True:
            text = (await client.get("/metrics")).text
            counts = [
                float(line[len(prefix) :]) for line in text.splitlines() if line.startswith(prefix)
            ]
            if counts and counts[0] >= 1:
                return text
            await asyncio.sleep(0.1)
