"""Running a plan on real Postgres and NATS: rolling windows, output variables, run
conditions after a failure, and a verdict that waits for its log.

agent-gateway's part (dispatches in, logs and verdicts out) is played over NATS by the
test; the machines query is the fake agent-gateway over real HTTP (fakes.py).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from nats.aio.client import Client
from sqlalchemy import update

from cephalo_common.contracts import ScriptActionSnapshot
from cephalo_common.db.session import unit_of_work
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.testing import running
from cephalo_orchestrator.app import create_app
from cephalo_orchestrator.db.models import ServerTask, StepRun

from ..fakes import FakeAgentGateway
from ..flow import (
    Dispatches,
    Scenario,
    add_targets,
    log_texts,
    report_finished,
    report_log,
    request_deployment,
    step,
    wait_for_task,
    with_properties,
)


def rolling(name: str, step_id: str, window: int, **extra: Any) -> ScriptActionSnapshot:
    action = step(name, ["web"], body=f"echo {name}")
    return with_properties(action, step_id=step_id, step_name="Roll", window_size=window, **extra)


async def test_a_rolling_window_keeps_two_machines_in_progress_and_outputs_flow(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    names = add_targets(fake_gateway, scenario, *(f"web-{i}" for i in range(1, 5)))
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    build = step("Build", ["web"])
    request = scenario.request(
        [build, rolling("Stop", "roll", 2), rolling("Start", "roll", 2)],
        variables={"Greeting": "hi"},
    )
    await request_deployment(broker, scenario.space, request)

    first = await dispatches.take(4)
    for dispatch in first:
        name = names[dispatch.machine_id]
        await report_finished(
            broker,
            scenario.space,
            dispatch,
            0,
            output_variables={"Url": f"http://{name}", "Token": f"token-{name}"},
            sensitive_output_variables=["Token"],
        )
    in_progress: set[str] = set()
    seen: list[tuple[str, str]] = []
    pending = await dispatches.take(2)
    while pending:
        current = pending.pop(0)
        name = names[current.machine_id]
        action = current.variables["Cephalo.Action.Name"]
        seen.append((action, name))
        in_progress.add(name)
        assert len(in_progress) <= 2, f"window exceeded: {in_progress}"
        assert current.variables["Cephalo.Action[Build].Output.Url"] == f"http://{name}"
        assert current.variables["Octopus.Action[Build].Output[web-1].Url"] == "http://web-1"
        assert current.variables["Greeting"] == "hi"
        assert "Cephalo.Action[Build].Output.Token" in current.sensitive_variables
        if action == "Start":
            in_progress.discard(name)
        await report_finished(broker, scenario.space, current, 0)
        if len(seen) <= 6:  # each of the first six ends frees exactly one next run
            pending.extend(await dispatches.take(1))

    assert seen == [
        ("Stop", "web-1"),
        ("Stop", "web-2"),
        ("Start", "web-1"),
        ("Start", "web-2"),
        ("Stop", "web-3"),
        ("Stop", "web-4"),
        ("Start", "web-3"),
        ("Start", "web-4"),
    ]
    task = await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")
    assert task["state"] == "Success"
    assert len(task["step_runs"]) == 12


async def test_after_a_failure_only_failure_and_always_steps_run(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    dispatches = await Dispatches.watch(nats_client, scenario.space)

    def conditional(name: str, condition: str) -> ScriptActionSnapshot:
        return with_properties(step(name, ["web"]), condition=condition)

    request = scenario.request(
        [
            step("Deploy", ["web"]),
            conditional("Smoke test", "Success"),
            conditional("Roll back", "Failure"),
            conditional("Notify", "Always"),
        ]
    )
    await request_deployment(broker, scenario.space, request)

    (deploy,) = await dispatches.take(1)
    await report_finished(broker, scenario.space, deploy, 3)
    (rollback,) = await dispatches.take(1)
    assert rollback.variables["Octopus.Action.Name"] == "Roll back"
    assert (
        rollback.variables["Octopus.Deployment.Error"]
        == 'Step "Deploy" failed on web-01 (exit code 3)'
    )
    await report_finished(broker, scenario.space, rollback, 0)
    (notify,) = await dispatches.take(1)
    assert notify.variables["Octopus.Action.Name"] == "Notify"
    await report_finished(broker, scenario.space, notify, 0)

    task = await wait_for_task(client, scenario, request.deployment_id, "Failed", "Success")
    assert task["state"] == "Failed"
    assert task["reason"] == 'Step "Deploy" failed on web-01 (exit code 3)'
    texts = await log_texts(client, scenario, task["id"])
    assert 'Skipping step 2 "Smoke test": an earlier step failed' in texts


async def test_a_verdict_waits_until_the_log_it_announces_has_arrived(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy", ["web"])])
    await request_deployment(broker, scenario.space, request)
    (dispatch,) = await dispatches.take(1)

    await report_log(broker, scenario.space, dispatch, ["one"])
    await report_finished(broker, scenario.space, dispatch, 0, last_log_sequence=3)
    held = await _wait_log(client, scenario, request.deployment_id, "one")
    assert held["state"] == "Executing"
    assert [run["state"] for run in held["step_runs"]] == ["Running"]

    await report_log(broker, scenario.space, dispatch, ["two", "three"], first=2)
    task = await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")

    texts = await log_texts(client, scenario, task["id"])
    finished = texts.index("Deploy on web-01 finished with exit code 0")
    assert texts.index("three") < finished
    assert task["state"] == "Success"


async def test_a_verdict_whose_log_never_arrives_is_applied_after_the_catch_up_time(
    make_settings: Any,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy", ["web"])])
    async with running(create_app(make_settings(log_catch_up_seconds=0.5))) as client:
        await request_deployment(broker, scenario.space, request)
        (dispatch,) = await dispatches.take(1)
        await report_finished(broker, scenario.space, dispatch, 0, last_log_sequence=2)

        task = await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")
        texts = await log_texts(client, scenario, task["id"])

    assert task["state"] == "Success"
    assert (
        "The log of Deploy on web-01 is incomplete: lines up to 2 were announced, 0 arrived"
        in texts
    )


async def _wait_log(
    client: httpx.AsyncClient, scenario: Scenario, deployment_id: str, text: str
) -> dict[str, Any]:
    task = await wait_for_task(client, scenario, deployment_id, "Executing")
    for _ in range(200):
        texts = await log_texts(client, scenario, task["id"])
        if text in texts:
            return await wait_for_task(client, scenario, deployment_id)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} never reached the task log")


async def test_a_running_task_that_waits_on_nothing_is_swept_and_finishes(
    make_settings: Any,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    """As if an instance died between a run ending and the task being made due."""
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "web-01", ["web"])
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([step("Deploy", ["web"])])
    app = create_app(make_settings(sweep_seconds=0.2))
    async with running(app) as client:
        await request_deployment(broker, scenario.space, request)
        (dispatch,) = await dispatches.take(1)
        async with unit_of_work(app.state.runtime.sessionmaker) as session:
            await session.execute(
                update(StepRun)
                .where(StepRun.ticket == dispatch.ticket)
                .values(state="Success", exit_code=0)
            )
            await session.execute(
                update(ServerTask)
                .where(ServerTask.id == uuid.UUID(dispatch.task_id))
                .values(step_due_at=None)
            )

        task = await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")

    assert task["state"] == "Success"
