"""Dispatch retries on real Postgres and NATS, agent-gateway faked over HTTP: a step whose
script never started (the gateway says so) is dispatched again with a new ticket, three
attempts in all; one that may have started is never re-run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from nats.aio.client import Client

from cephalo_common.contracts import StepDispatchV1
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

UNREACHABLE = "Machine web-01 did not connect within 5 s"


@pytest.fixture
async def client(
    make_settings: Callable[..., OrchestratorSettings],
) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(make_settings())) as app_client:
        yield app_client


def never_started(fake_gateway: FakeAgentGateway, dispatch: StepDispatchV1) -> None:
    fake_gateway.script_runs[dispatch.ticket] = {
        "state": "Complete",
        "exit_code": None,
        "error": UNREACHABLE,
        "last_log_sequence": 0,
        "started_at": None,
    }


@pytest.mark.timeout(120)
async def test_a_step_that_never_started_is_dispatched_again_up_to_three_times(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    add_targets(fake_gateway, scenario, "web-01")
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy", ["web"])])
    await request_deployment(broker, scenario.space, request)
    tickets = []
    for _ in range(3):
        [dispatch] = await dispatches.take(1)
        tickets.append(dispatch.ticket)
        never_started(fake_gateway, dispatch)
        await report_finished(broker, scenario.space, dispatch, None, UNREACHABLE)
    task = await wait_for_task(client, scenario, request.deployment_id, "Failed")
    await dispatches.expect_none()
    await dispatches.close()

    assert len(set(tickets)) == 3
    assert [run["attempt"] for run in task["step_runs"]] == [1, 2, 3]
    assert task["reason"] == 'Step "Deploy" failed on web-01 (no exit code)'
    texts = await log_texts(client, scenario, str(task["id"]))
    assert sum("dispatching it again" in text for text in texts) == 2
    assert any("(attempt 3 of 3)" in text for text in texts)


@pytest.mark.timeout(120)
async def test_a_step_that_may_have_started_is_not_dispatched_again(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    add_targets(fake_gateway, scenario, "web-01")
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy", ["web"])])
    await request_deployment(broker, scenario.space, request)
    [dispatch] = await dispatches.take(1)
    fake_gateway.script_runs[dispatch.ticket] = {
        "state": "Complete",
        "exit_code": None,
        "error": "the outcome of its script is unknown",
        "last_log_sequence": 0,
        "started_at": "2026-12-07T12:00:00+00:00",
    }
    await report_finished(broker, scenario.space, dispatch, None, "outcome unknown")
    task = await wait_for_task(client, scenario, request.deployment_id, "Failed")
    await dispatches.expect_none()
    await dispatches.close()

    assert [run["attempt"] for run in task["step_runs"]] == [1]
