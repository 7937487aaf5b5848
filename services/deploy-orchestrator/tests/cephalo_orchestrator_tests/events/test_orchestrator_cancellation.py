"""Cancelling tasks through the API, on real Postgres and NATS: a queued task ends at once,
a running one asks agent-gateway to stop its steps (the fake records the call) and ends
Canceled when they stop, or abandons them after the grace period and frees the lane.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
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
    identity,
    log_texts,
    report_finished,
    request_deployment,
    step,
    wait_for_task,
)

GRACE_SECONDS = 1.0


@pytest.fixture
async def app(make_settings: Callable[..., OrchestratorSettings]) -> FastAPI:
    return create_app(make_settings(cancel_grace_seconds=GRACE_SECONDS))


async def running_task(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
    scenario: Scenario,
) -> tuple[str, Dispatches, list[StepDispatchV1]]:
    add_targets(fake_gateway, scenario, "web-01", "web-02")
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy", ["web"]), step("Verify", ["web"])])
    await request_deployment(broker, scenario.space, request)
    sent = await dispatches.take(2)
    task = await wait_for_task(client, scenario, request.deployment_id, "Executing")
    return str(task["id"]), dispatches, sent


@pytest.fixture
async def patient_client(
    make_settings: Callable[..., OrchestratorSettings],
) -> AsyncIterator[httpx.AsyncClient]:
    """A grace period no loaded machine outlasts: the agents' answers decide."""
    async with running(create_app(make_settings(cancel_grace_seconds=300))) as client:
        yield client


async def test_cancelling_stops_the_running_steps_and_ends_canceled(
    patient_client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    client = patient_client
    scenario = Scenario()
    task_id, dispatches, sent = await running_task(
        client, broker, nats_client, fake_gateway, scenario
    )

    response = await client.post(f"{scenario.tasks_url()}/{task_id}/cancel", headers=identity())

    assert response.status_code == 202, response.text
    assert response.json()["state"] == "Cancelling"
    again = await client.post(f"{scenario.tasks_url()}/{task_id}/cancel", headers=identity())
    assert again.status_code == 202 and again.json()["state"] == "Cancelling"
    for dispatch in sent:
        await _wait_cancel_requested(fake_gateway, dispatch.ticket)
        await report_finished(broker, scenario.space, dispatch, -1, "Canceled")
    done = await _wait_state(client, scenario, task_id, "Canceled")
    assert done["reason"] == "Cancellation requested by alice; every running step stopped"
    assert {run["state"] for run in done["step_runs"]} == {"Canceled"}
    await dispatches.expect_none(0.3)


async def test_a_step_that_ignores_the_cancel_is_abandoned_after_the_grace_period(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    task_id, dispatches, sent = await running_task(
        client, broker, nats_client, fake_gateway, scenario
    )
    await report_finished(broker, scenario.space, sent[0], 0)

    await client.post(f"{scenario.tasks_url()}/{task_id}/cancel", headers=identity("bob"))
    done = await _wait_state(client, scenario, task_id, "Canceled")

    stuck = next(run for run in done["step_runs"] if run["ticket"] == sent[1].ticket)
    assert stuck["state"] == "Canceled"
    assert done["reason"] == (
        f"Cancellation requested by bob; {stuck['machine_name']} did not stop within the "
        f"{GRACE_SECONDS:g} s grace period and was abandoned"
    )
    assert sent[1].ticket in fake_gateway.cancelled
    texts = await log_texts(client, scenario, task_id)
    assert any("abandoned" in text for text in texts)

    follow_up = scenario.request([step("Deploy", ["web"])], version="1.0.1")
    await request_deployment(broker, scenario.space, follow_up)
    assert len(await dispatches.take(2)) == 2


async def test_a_queued_task_is_canceled_at_once_and_an_ended_one_cannot_be(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    task_id, _, _ = await running_task(client, broker, nats_client, fake_gateway, scenario)
    queued_request = scenario.request([step("Deploy", ["web"])], version="2.0.0")
    await request_deployment(broker, scenario.space, queued_request)
    queued = await wait_for_task(client, scenario, queued_request.deployment_id, "Queued")
    url = f"{scenario.tasks_url()}/{queued['id']}/cancel"

    response = await client.post(url, headers=identity())

    assert response.status_code == 202 and response.json()["state"] == "Canceled"
    assert response.json()["reason"] == "Canceled by alice before it started"
    ended = await client.post(url, headers=identity())
    assert ended.status_code == 409 and "already ended (Canceled)" in ended.text
    assert (await client.post(url)).status_code == 401
    other = url.replace(scenario.space, str(Scenario().space_id))
    assert (await client.post(other, headers=identity())).status_code == 404
    bad = f"{scenario.tasks_url()}/not-a-uuid/cancel"
    assert (await client.post(bad, headers=identity())).status_code == 422
    running_one = await client.get(f"{scenario.tasks_url()}/{task_id}")
    assert running_one.json()["state"] == "Executing"


async def _wait_cancel_requested(fake_gateway: FakeAgentGateway, ticket: str) -> None:
    async with asyncio.timeout(10):
        while ticket not in fake_gateway.cancelled:
            await asyncio.sleep(0.05)


async def _wait_state(
    client: httpx.AsyncClient, scenario: Scenario, task_id: str, state: str
) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            task = (await client.get(f"{scenario.tasks_url()}/{task_id}")).json()
            if task["state"] == state:
                return dict(task)
            await asyncio.sleep(0.05)
