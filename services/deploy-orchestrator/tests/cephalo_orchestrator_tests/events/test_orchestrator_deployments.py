"""A deployment end to end through the orchestrator, on real Postgres and NATS.

release-service's DEPLOYMENT_REQUESTED and agent-gateway's STEP_LOG / STEP_FINISHED are
published as real envelopes; the machines query is answered by a fake agent-gateway over
real HTTP (fakes.py); the real agent-gateway is exercised by the end-to-end suite.
"""

from __future__ import annotations

import asyncio

import httpx
from nats.aio.client import Client

from cephalo_common.contracts import (
    DEPLOYMENT_FINISHED,
    STEP_DISPATCH,
    TASK_STATE_CHANGED,
    DeploymentFinishedV1,
    TaskStateChangedV1,
)
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.messaging.streams import CMD_AGENT, EVT_DEPLOY

from ..fakes import FakeAgentGateway
from ..flow import (
    Dispatches,
    Scenario,
    add_targets,
    last_event,
    log_texts,
    report_finished,
    report_log,
    request_deployment,
    step,
    task_log,
    wait_for_task,
)


async def test_a_deployment_runs_on_every_enabled_web_machine_and_succeeds(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    env = scenario.environment_id
    web1 = fake_gateway.add_machine(scenario.space_id, env, "web-01", ["web"])
    web2 = fake_gateway.add_machine(scenario.space_id, env, "web-02", ["web", "api"])
    fake_gateway.add_machine(scenario.space_id, env, "web-03", ["web"], disabled=True)
    fake_gateway.add_machine(scenario.space_id, env, "db-01", ["db"])
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy web", ["web"], body="echo deployed")])

    await request_deployment(broker, scenario.space, request)

    sent = await dispatches.take(2)
    assert {d.machine_id for d in sent} == {web1["id"], web2["id"]}
    assert {d.script_body for d in sent} == {"echo deployed"}
    assert len({d.ticket for d in sent}) == 2 and {d.attempt for d in sent} == {1}
    subject = STEP_DISPATCH.subject(scenario.space)
    stream = await nats_client.jetstream().stream_info(CMD_AGENT.name, subjects_filter=subject)
    assert stream.state.subjects == {subject: 2}
    executing = await wait_for_task(client, scenario, request.deployment_id, "Executing")
    assert {run["state"] for run in executing["step_runs"]} == {"Pending"}

    for dispatch in sent:
        lines = [f"hello from {dispatch.machine_id}", "done"]
        await report_log(broker, scenario.space, dispatch, lines)
        await report_log(broker, scenario.space, dispatch, lines)
        await report_finished(broker, scenario.space, dispatch, 0)

    task = await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")
    assert task["state"] == "Success" and task["reason"] is None
    assert task["completed_at"] is not None and task["is_completed"] is True
    assert {(run["state"], run["exit_code"]) for run in task["step_runs"]} == {("Success", 0)}
    log = await task_log(client, scenario, task["id"])
    texts = [line["text"] for line in log]
    for dispatch in sent:
        assert texts.count(f"hello from {dispatch.machine_id}") == 1
    assert texts.count("done") == 2
    assert [line["id"] for line in log] == sorted(line["id"] for line in log)
    assert f"Deploying Web App release 1.0.0 to {scenario.environment_name}" in texts
    assert "Deploy web on web-01 finished with exit code 0" in texts
    ours = [line["text"] for line in log if line["source"] in {"info", "error"}]
    assert ours[-1] == "Deployment completed successfully"
    agent_lines = [line for line in log if line["source"] == "stdout"]
    assert {line["machine"] for line in agent_lines} == {"web-01", "web-02"}
    assert {line["step"] for line in agent_lines} == {"Deploy web"}

    finished = await last_event(
        nats_client, EVT_DEPLOY.name, DEPLOYMENT_FINISHED.subject(scenario.space)
    )
    verdict = finished.payload(DeploymentFinishedV1)
    assert verdict.state == "Success" and verdict.error is None
    assert verdict.deployment_id == request.deployment_id and verdict.task_id == task["id"]
    changed = await last_event(
        nats_client, EVT_DEPLOY.name, TASK_STATE_CHANGED.subject(scenario.space)
    )
    assert changed.payload(TaskStateChangedV1).state == "Success"
    await dispatches.close()


async def test_steps_run_one_after_another(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    web = fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    db = fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "db-01", ["db"])
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request(
        [step("Migrate database", ["db"], body="migrate"), step("Deploy web", ["web"])]
    )
    await request_deployment(broker, scenario.space, request)

    (first,) = await dispatches.take(1)
    assert first.machine_id == db["id"] and first.script_body == "migrate"
    await dispatches.expect_none(0.5)
    await report_finished(broker, scenario.space, first, 0)
    (second,) = await dispatches.take(1)
    assert second.machine_id == web["id"]
    await report_finished(broker, scenario.space, second, 0)

    task = await wait_for_task(client, scenario, request.deployment_id, "Success")
    assert [run["step_index"] for run in task["step_runs"]] == [0, 1]
    assert task["current_step"] == 1
    await dispatches.close()


async def test_a_non_zero_exit_code_fails_the_deployment_once_the_step_ends(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    add_targets(fake_gateway, scenario, "web-01", "web-02")
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy web", ["web"]), step("Smoke test", ["web"])])
    await request_deployment(broker, scenario.space, request)
    sent = await dispatches.take(2)
    task = await wait_for_task(client, scenario, request.deployment_id, "Executing")
    by_machine = {run["machine_id"]: run["machine_name"] for run in task["step_runs"]}
    failing = next(d for d in sent if by_machine[d.machine_id] == "web-02")
    passing = next(d for d in sent if d is not failing)

    await report_finished(broker, scenario.space, failing, 3)
    task = await wait_for_task(client, scenario, request.deployment_id, "Executing")
    await report_finished(broker, scenario.space, passing, 0)
    task = await wait_for_task(client, scenario, request.deployment_id, "Failed", "Success")

    assert task["state"] == "Failed"
    assert task["reason"] == 'Step "Deploy web" failed on web-02 (exit code 3)'
    log = await task_log(client, scenario, task["id"])
    assert "Deploy web on web-02 finished with exit code 3" in [line["text"] for line in log]
    assert (log[-1]["text"], log[-1]["source"]) == (task["reason"], "error")
    await dispatches.expect_none(0.5)
    finished = await last_event(
        nats_client, EVT_DEPLOY.name, DEPLOYMENT_FINISHED.subject(scenario.space)
    )
    verdict = finished.payload(DeploymentFinishedV1)
    assert verdict.state == "Failed" and verdict.error == task["reason"]
    await dispatches.close()


async def test_a_verdict_for_a_finished_run_is_ignored(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy web", ["web"])])
    await request_deployment(broker, scenario.space, request)
    (dispatch,) = await dispatches.take(1)
    await report_finished(broker, scenario.space, dispatch, 0)
    await report_finished(broker, scenario.space, dispatch, 9)
    await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")
    await asyncio.sleep(0.5)
    task = await wait_for_task(client, scenario, request.deployment_id)
    assert task["state"] == "Success"
    assert task["step_runs"][0]["exit_code"] == 0
    await dispatches.close()


async def test_no_machine_with_the_roles_fails_the_task_with_the_reason(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "db-01", ["db"])
    request = scenario.request([step("Deploy web", ["web"])])
    await request_deployment(broker, scenario.space, request)

    task = await wait_for_task(client, scenario, request.deployment_id, "Failed", "Success")
    reason = (
        f"No deployment targets in {scenario.environment_name} have any of the roles: web "
        '(step "Deploy web")'
    )
    assert task["state"] == "Failed" and task["reason"] == reason
    assert task["step_runs"] == []
    texts = await log_texts(client, scenario, task["id"])
    assert reason in texts
    finished = await last_event(
        nats_client, EVT_DEPLOY.name, DEPLOYMENT_FINISHED.subject(scenario.space)
    )
    assert finished.payload(DeploymentFinishedV1).error == reason


async def test_a_step_without_a_script_fails_the_task_before_dispatch(
    client: httpx.AsyncClient, broker: NatsBroker, fake_gateway: FakeAgentGateway
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    request = scenario.request([step("Deploy web", ["web"], body="  ")])
    await request_deployment(broker, scenario.space, request)
    task = await wait_for_task(client, scenario, request.deployment_id, "Failed", "Success")
    assert task["reason"] == 'step "Deploy web" has no script to run'
