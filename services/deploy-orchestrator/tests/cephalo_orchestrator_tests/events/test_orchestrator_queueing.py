"""Queueing: one task per deployment however often it is requested, one running deployment
per project and environment, and several orchestrator instances sharing the work safely."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from fastapi import FastAPI
from nats.aio.client import Client

from cephalo_common.contracts import DEPLOYMENT_REQUESTED
from cephalo_common.db.inbox import idempotent_handler
from cephalo_common.messaging import subjects
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.messaging.streams import DEAD_LETTERS
from cephalo_common.testing import running
from cephalo_orchestrator.app import create_app
from cephalo_orchestrator.db.models import InboxMessage
from cephalo_orchestrator.events.consumers import (
    DEPLOYMENT_REQUESTED_CONSUMER,
    on_deployment_requested,
)
from cephalo_orchestrator.settings import OrchestratorSettings

from ..fakes import FakeAgentGateway
from ..flow import (
    Dispatches,
    Scenario,
    deployment_envelope,
    last_event,
    report_finished,
    request_deployment,
    step,
    wait_for_task,
)


async def test_a_deployment_requested_twice_gets_one_task(
    app: FastAPI,
    client: httpx.AsyncClient,
    broker: NatsBroker,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    request = scenario.request([step("Deploy web", ["web"])])
    first = await request_deployment(broker, scenario.space, request)
    await request_deployment(broker, scenario.space, request)
    await wait_for_task(client, scenario, request.deployment_id, "Executing")

    handler = idempotent_handler(
        app.state.runtime.sessionmaker,
        InboxMessage,
        DEPLOYMENT_REQUESTED_CONSUMER,
        on_deployment_requested,
    )
    await handler(first)
    await handler(first)

    listed = await client.get(scenario.tasks_url(), params={"deployment_id": request.deployment_id})
    assert len(listed.json()) == 1 and listed.headers["x-total-count"] == "1"


async def test_a_second_deployment_to_the_same_environment_waits_for_the_first(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    first = scenario.request([step("Deploy web", ["web"])], version="1.0.0")
    second = scenario.request([step("Deploy web", ["web"])], version="1.0.1")
    await request_deployment(broker, scenario.space, first)
    (running_first,) = await dispatches.take(1)
    await request_deployment(broker, scenario.space, second)

    waiting = await wait_for_task(client, scenario, second.deployment_id, "Queued")
    expected = (
        f"waiting for deployment {first.deployment_id} of the same project "
        f"to {scenario.environment_name}"
    )
    async with asyncio.timeout(10):
        while waiting["reason"] != expected:
            waiting = await wait_for_task(client, scenario, second.deployment_id, "Queued")
    await dispatches.expect_none(0.5)

    await report_finished(broker, scenario.space, running_first, 0)
    (running_second,) = await dispatches.take(1)
    started = await wait_for_task(client, scenario, second.deployment_id, "Executing")
    assert started["reason"] is None
    assert running_second.task_id == started["id"]
    await report_finished(broker, scenario.space, running_second, 0)
    await wait_for_task(client, scenario, second.deployment_id, "Success")
    await dispatches.close()


async def test_another_environment_of_the_same_project_does_not_wait(
    client: httpx.AsyncClient, broker: NatsBroker, fake_gateway: FakeAgentGateway
) -> None:
    test_env = Scenario()
    production = Scenario(space_id=test_env.space_id, project_id=test_env.project_id)
    for scenario in (test_env, production):
        fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web", ["web"])
    first = test_env.request([step("Deploy web", ["web"])])
    second = production.request([step("Deploy web", ["web"])])
    await request_deployment(broker, test_env.space, first)
    await request_deployment(broker, production.space, second)
    await wait_for_task(client, test_env, first.deployment_id, "Executing")
    await wait_for_task(client, production, second.deployment_id, "Executing")


async def test_two_instances_start_each_task_once(
    make_settings: Callable[..., OrchestratorSettings],
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-02", ["web"])
    lanes = [
        Scenario(space_id=scenario.space_id, environment_id=scenario.environment_id)
        for _ in range(6)
    ]
    requests = [lane.request([step("Deploy web", ["web"])]) for lane in lanes]
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    async with (
        running(create_app(make_settings())) as one,
        running(create_app(make_settings())),
    ):
        await asyncio.gather(
            *(request_deployment(broker, scenario.space, request) for request in requests)
        )
        sent = await dispatches.take(12)
        await dispatches.expect_none(1.0)
        tasks = [
            await wait_for_task(one, lane, request.deployment_id, "Executing")
            for lane, request in zip(lanes, requests, strict=True)
        ]
    assert len({(d.task_id, d.machine_id) for d in sent}) == 12
    assert all(len(task["step_runs"]) == 2 for task in tasks)
    await dispatches.close()


async def test_an_unreadable_request_goes_to_the_dead_letters(
    client: httpx.AsyncClient, broker: NatsBroker, nats_client: Client
) -> None:
    scenario = Scenario()
    good = deployment_envelope(scenario.space, scenario.request([step("Deploy web", ["web"])]))
    broken = Envelope(
        **{**good.model_dump(), "data": {"deployment_id": "not-a-uuid", "steps": "nope"}}
    )
    await broker.publish(DEPLOYMENT_REQUESTED.subject(scenario.space), broken)
    await last_event(
        nats_client,
        DEAD_LETTERS.name,
        subjects.dead_letter(DEPLOYMENT_REQUESTED_CONSUMER),
        where=lambda dead: dead.id == broken.id,
    )
    listed = await client.get(scenario.tasks_url())
    assert listed.json() == []


async def test_an_instance_starts_no_more_tasks_than_its_cap(
    make_settings: Callable[..., OrchestratorSettings],
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    first_lane = Scenario()
    second_lane = Scenario(space_id=first_lane.space_id)
    for lane in (first_lane, second_lane):
        fake_gateway.add_machine(lane.space_id, lane.environment_id, "web-01", ["web"])
    dispatches = await Dispatches.watch(nats_client, first_lane.space)
    first = first_lane.request([step("Deploy web", ["web"])])
    second = second_lane.request([step("Deploy web", ["web"])])
    async with running(create_app(make_settings(max_concurrent_tasks=1))) as client:
        await request_deployment(broker, first_lane.space, first)
        (dispatch,) = await dispatches.take(1)
        await request_deployment(broker, second_lane.space, second)
        waiting = await wait_for_task(client, second_lane, second.deployment_id, "Queued")
        async with asyncio.timeout(10):
            while not (waiting["reason"] or "").startswith("waiting for a free task slot"):
                waiting = await wait_for_task(client, second_lane, second.deployment_id)
        assert waiting["state"] == "Queued"
        await dispatches.expect_none(0.5)

        await report_finished(broker, first_lane.space, dispatch, 0)
        (next_dispatch,) = await dispatches.take(1)
        started = await wait_for_task(client, second_lane, second.deployment_id, "Executing")
        assert next_dispatch.task_id == started["id"] and started["reason"] is None
        await report_finished(broker, second_lane.space, next_dispatch, 0)
        await wait_for_task(client, second_lane, second.deployment_id, "Success")
    await dispatches.close()
