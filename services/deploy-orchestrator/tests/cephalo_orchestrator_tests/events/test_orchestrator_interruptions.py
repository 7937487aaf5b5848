"""Guided failure and manual intervention through the API, on real Postgres and NATS.

agent-gateway's part (dispatches in, verdicts out) is played over NATS by the test; the
machines query is the fake agent-gateway over real HTTP (fakes.py).
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from cephalo_common.contracts import DeploymentOptionsV1, DeploymentRequestedV1
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.testing import running
from cephalo_orchestrator.app import create_app

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
    with_properties,
)

GUIDED = DeploymentOptionsV1(use_guided_failure=True)


def three_targets(scenario: Scenario, fake_gateway: FakeAgentGateway) -> dict[str, str]:
    return add_targets(fake_gateway, scenario, "web-01", "web-02", "web-03")


async def pending_interruption(
    client: httpx.AsyncClient, scenario: Scenario, task_id: str
) -> dict[str, Any]:
    url = f"{scenario.tasks_url()}/{task_id}/interruptions"
    response = await client.get(url)
    assert response.status_code == 200, response.text
    (pending,) = [item for item in response.json() if item["is_pending"]]
    return dict(pending)


async def fail_on_web02(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    dispatches: Dispatches,
    scenario: Scenario,
    request: DeploymentRequestedV1,
    names: dict[str, str],
) -> tuple[dict[str, Any], dict[str, Any]]:
    await request_deployment(broker, scenario.space, request)
    for dispatch in await dispatches.take(3):
        failed = names[dispatch.machine_id] == "web-02"
        await report_finished(broker, scenario.space, dispatch, 1 if failed else 0)
    task = await wait_for_task(client, scenario, request.deployment_id, "Paused")
    return task, await pending_interruption(client, scenario, task["id"])


@pytest.mark.parametrize(
    ("choice", "second_step_on", "state"),
    [
        ("Retry", ["web-01", "web-02", "web-03"], "Success"),
        ("Exclude", ["web-01", "web-03"], "Success"),
        ("Ignore", ["web-01", "web-02", "web-03"], "Success"),
        ("Fail", [], "Failed"),
    ],
)
async def test_guided_failure_pauses_and_each_choice_does_what_it_says(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
    choice: str,
    second_step_on: list[str],
    state: str,
) -> None:
    scenario = Scenario()
    names = three_targets(scenario, fake_gateway)
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy", ["web"]), step("Verify", ["web"])], options=GUIDED)

    task, interruption = await fail_on_web02(client, broker, dispatches, scenario, request, names)
    assert task["reason"].startswith('waiting for a decision: "Deploy" failed on web-02')
    assert interruption["kind"] == "GuidedFailure"
    assert interruption["choices"] == ["Fail", "Retry", "Ignore", "Exclude"]
    url = f"{scenario.tasks_url()}/{task['id']}/interruptions/{interruption['id']}"
    taken = await client.post(f"{url}/responsible", headers=identity("alice"))
    assert taken.status_code == 200 and taken.json()["responsible_user"] == "alice"

    answered = await client.post(
        f"{url}/submit", json={"result": choice, "notes": "seen it"}, headers=identity("alice")
    )

    assert answered.status_code == 200, answered.text
    assert answered.json()["result"] == choice and answered.json()["is_pending"] is False
    if choice == "Retry":
        (again,) = await dispatches.take(1)
        assert (names[again.machine_id], again.attempt) == ("web-02", 2)
        await report_finished(broker, scenario.space, again, 0)
    second = await dispatches.take(len(second_step_on)) if second_step_on else []
    assert sorted(names[d.machine_id] for d in second) == second_step_on
    assert {d.variables["Cephalo.Action.Name"] for d in second} <= {"Verify"}
    for dispatch in second:
        await report_finished(broker, scenario.space, dispatch, 0)
    done = await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")
    assert done["state"] == state
    if state == "Failed":
        assert done["reason"] == 'Step "Deploy" failed on web-02 (exit code 1)'
    texts = await log_texts(client, scenario, task["id"])
    audit = f'alice chose {choice} for "{interruption["title"]}": seen it'
    assert audit in texts
    await dispatches.expect_none(0.3)


async def test_a_required_step_offers_only_fail_and_retry(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    names = three_targets(scenario, fake_gateway)
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    required = with_properties(step("Deploy", ["web"]), is_required=True)
    request = scenario.request([required], options=GUIDED)
    task, interruption = await fail_on_web02(client, broker, dispatches, scenario, request, names)
    url = f"{scenario.tasks_url()}/{task['id']}/interruptions/{interruption['id']}"

    assert interruption["choices"] == ["Fail", "Retry"]
    ignored = await client.post(f"{url}/submit", json={"result": "Ignore"}, headers=identity())
    assert ignored.status_code == 422 and "not offered" in ignored.text
    failed = await client.post(f"{url}/submit", json={"result": "Fail"}, headers=identity())
    assert failed.status_code == 200
    done = await wait_for_task(client, scenario, request.deployment_id, "Failed", "Success")
    assert done["state"] == "Failed"


async def test_interruption_requests_that_cannot_be_honoured_get_problems(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    names = three_targets(scenario, fake_gateway)
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy", ["web"])], options=GUIDED)
    task, interruption = await fail_on_web02(client, broker, dispatches, scenario, request, names)
    base = f"{scenario.tasks_url()}/{task['id']}/interruptions"
    url = f"{base}/{interruption['id']}"
    other_space = url.replace(scenario.space, str(Scenario().space_id))

    def status(response: httpx.Response) -> int:
        assert response.headers["content-type"] == "application/problem+json", response.text
        return response.status_code

    assert status(await client.post(f"{url}/submit", json={"result": "Fail"})) == 401
    forged = {"X-Cephalo-Identity": "e30.AAAA"}
    assert (
        status(await client.post(f"{url}/submit", json={"result": "Fail"}, headers=forged)) == 401
    )
    assert status(await client.get(other_space)) == 404
    assert status(await client.get(f"{base}/{scenario.project_id}")) == 404
    assert status(await client.get(f"{base}/not-a-uuid")) == 422
    body = {"result": "Maybe"}
    assert status(await client.post(f"{url}/submit", json=body, headers=identity())) == 422
    await client.post(f"{url}/responsible", headers=identity("bob"))
    taken = await client.post(f"{url}/submit", json={"result": "Fail"}, headers=identity("alice"))
    assert status(taken) == 409 and "bob is responsible" in taken.text
    ok = await client.post(f"{url}/submit", json={"result": "Ignore"}, headers=identity("bob"))
    assert ok.status_code == 200
    again = await client.post(f"{url}/submit", json={"result": "Fail"}, headers=identity("bob"))
    assert status(again) == 409 and "already answered (Ignore by bob)" in again.text
    late = await client.post(f"{url}/responsible", headers=identity("carol"))
    assert status(late) == 409
    done = await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")
    assert done["state"] == "Success"


@pytest.mark.parametrize(("choice", "state"), [("Proceed", "Success"), ("Abort", "Failed")])
async def test_a_manual_intervention_waits_for_proceed_or_abort(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
    choice: str,
    state: str,
) -> None:
    scenario = Scenario()
    three_targets(scenario, fake_gateway)
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    manual = step("Approve", [])
    manual = manual.model_copy(
        update={
            "action_type": "cephalo.manual",
            "properties": {"instructions": "Check the dashboard", "responsible_team_ids": ["ops"]},
        }
    )
    request = scenario.request([manual, step("Deploy", ["web"])])
    await request_deployment(broker, scenario.space, request)

    task = await wait_for_task(client, scenario, request.deployment_id, "Paused")
    interruption = await pending_interruption(client, scenario, task["id"])
    assert interruption["kind"] == "ManualIntervention"
    assert interruption["instructions"] == "Check the dashboard"
    assert interruption["responsible_team_ids"] == ["ops"]
    assert interruption["choices"] == ["Proceed", "Abort"]
    await dispatches.expect_none(0.3)
    url = f"{scenario.tasks_url()}/{task['id']}/interruptions/{interruption['id']}"
    answered = await client.post(
        f"{url}/submit", json={"result": choice, "notes": "looks fine"}, headers=identity()
    )
    assert answered.status_code == 200, answered.text

    if choice == "Proceed":
        for dispatch in await dispatches.take(3):
            await report_finished(broker, scenario.space, dispatch, 0)
    done = await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")
    assert done["state"] == state
    if state == "Failed":
        assert done["reason"] == 'Step "Approve" was aborted by alice: looks fine'


async def test_a_paused_task_takes_no_slot_of_the_instance(
    make_settings: Any,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    three_targets(scenario, fake_gateway)
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    manual = step("Approve", []).model_copy(
        update={"action_type": "cephalo.manual", "properties": {"instructions": "Wait"}}
    )
    waiting = scenario.request([manual])
    other = Scenario(space_id=scenario.space_id, environment_id=scenario.environment_id)
    deploy = other.request([step("Deploy", ["web"])])
    async with running(create_app(make_settings(max_concurrent_tasks=1))) as client:
        await request_deployment(broker, scenario.space, waiting)
        await wait_for_task(client, scenario, waiting.deployment_id, "Paused")
        await request_deployment(broker, scenario.space, deploy)

        assert len(await dispatches.take(3)) == 3
        paused = await wait_for_task(client, scenario, waiting.deployment_id)
    assert paused["state"] == "Paused"
