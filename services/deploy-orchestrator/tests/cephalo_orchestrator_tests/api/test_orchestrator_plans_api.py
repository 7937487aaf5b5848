"""The dry-run plan endpoint: it creates nothing, explains exclusions, hides sensitive
values, matches what the deployment then does, and refuses bad input with problems.

The machines query is the fake agent-gateway over real HTTP (fakes.py); the deployment
runs on real Postgres and NATS, with the test playing agent-gateway's part.
"""

from __future__ import annotations

import httpx
from nats.aio.client import Client

from cephalo_common.contracts import (
    ConnectivityPolicyV1,
    DeploymentOptionsV1,
    DeploymentRequestedV1,
    StepDispatchV1,
)
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.variables import ScopeField, VariableValue

from ..fakes import FakeAgentGateway
from ..flow import (
    Dispatches,
    Scenario,
    report_finished,
    request_deployment,
    step,
    wait_for_task,
    with_properties,
)


def plan_url(scenario: Scenario) -> str:
    return f"/api/v1/spaces/{scenario.space}/deployment-plans"


def three_step_request(
    scenario: Scenario, fake_gateway: FakeAgentGateway
) -> tuple[DeploymentRequestedV1, dict[str, str]]:
    env = scenario.environment_id
    machines = [
        fake_gateway.add_machine(scenario.space_id, env, "web-01", ["web"]),
        fake_gateway.add_machine(scenario.space_id, env, "web-02", ["web"]),
        fake_gateway.add_machine(scenario.space_id, env, "web-03", ["web"]),
        fake_gateway.add_machine(scenario.space_id, env, "db-01", ["db"]),
        fake_gateway.add_machine(scenario.space_id, env, "web-04", ["web"], disabled=True),
        fake_gateway.add_machine(scenario.space_id, env, "web-05", ["web"]),
    ]
    steps = [
        with_properties(step("Migrate", ["db"]), condition="Always"),
        with_properties(step("Deploy", ["web"]), max_parallelism=2),
        with_properties(step("Warm", ["db"]), start_trigger="StartWithPrevious"),
        with_properties(
            step("Smoke", ["web"]), condition="Variable", condition_expression="#{Smoke}"
        ),
    ]
    values = [
        VariableValue(name="Smoke", value="False"),
        VariableValue(
            name="Url",
            value="http://prod",
            scope={ScopeField.MACHINE: frozenset({machines[1]["id"]})},
        ),
        VariableValue(name="Url", value="http://default"),
        VariableValue(name="ApiKey", value="very-secret-key", is_sensitive=True),
    ]
    request = scenario.request(
        steps,
        variable_values=values,
        options=DeploymentOptionsV1(excluded_machine_ids=[machines[5]["id"]]),
    )
    return request, {m["id"]: m["name"] for m in machines}


async def test_the_plan_explains_itself_and_creates_nothing(
    client: httpx.AsyncClient, nats_client: Client, fake_gateway: FakeAgentGateway
) -> None:
    scenario = Scenario()
    request, _ = three_step_request(scenario, fake_gateway)
    dispatches = await Dispatches.watch(nats_client, scenario.space)

    response = await client.post(plan_url(scenario), json=request.model_dump(mode="json"))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["can_deploy"] is True and body["error"] is None
    steps = {s["name"]: s for s in body["steps"]}
    assert [s["group"] for s in body["steps"]] == [0, 1, 1, 2]
    assert [t["machine_name"] for t in steps["Deploy"]["targets"]] == ["web-01", "web-02", "web-03"]
    assert {(e["machine_name"], e["reason"]) for e in steps["Deploy"]["excluded_targets"]} == {
        ("web-04", "disabled"),
        ("web-05", "excluded by the person deploying"),
    }
    assert steps["Smoke"]["runs"] is False
    assert steps["Smoke"]["reason"] == "its run condition '#{Smoke}' is false"
    deploy_runs = [run for run in body["order"] if run["step_name"] == "Deploy"]
    assert body["order"][0]["step_name"] == "Migrate"
    assert [run["starts_after"] for run in deploy_runs] == [1, 1, deploy_runs[0]["position"]]
    by_machine = {run["machine_name"]: run for run in deploy_runs}
    assert by_machine["web-02"]["variables"]["Url"] == "http://prod"
    assert by_machine["web-01"]["variables"]["Url"] == "http://default"
    assert by_machine["web-01"]["variables"]["Octopus.Machine.Name"] == "web-01"
    assert by_machine["web-01"]["sensitive_variables"] == ["ApiKey"]
    assert "very-secret-key" not in response.text

    tasks = await client.get(scenario.tasks_url())
    assert tasks.json() == []
    await dispatches.expect_none(0.5)


async def test_the_deployment_does_what_the_plan_said(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
) -> None:
    scenario = Scenario()
    request, names = three_step_request(scenario, fake_gateway)
    planned = (
        await client.post(
            plan_url(scenario), params={"variables": "false"}, json=request.model_dump(mode="json")
        )
    ).json()
    order = planned["order"]
    assert all(run["variables"] is None for run in order)
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    await request_deployment(broker, scenario.space, request)

    def key(dispatch: StepDispatchV1) -> tuple[str, str]:
        return dispatch.variables["Cephalo.Action.Name"], names[dispatch.machine_id]

    started: list[StepDispatchV1] = await dispatches.take(
        sum(run["starts_after"] is None for run in order)
    )
    for position, run in enumerate(order, start=1):
        expected_now = {(r["action_name"], r["machine_name"]) for r in order[: len(started)]}
        assert {key(d) for d in started} == expected_now
        current = next(d for d in started if key(d) == (run["action_name"], run["machine_name"]))
        await report_finished(broker, scenario.space, current, 0)
        freed = sum(r["starts_after"] == position for r in order)
        if freed:
            started.extend(await dispatches.take(freed))

    task = await wait_for_task(client, scenario, request.deployment_id, "Success", "Failed")
    assert task["state"] == "Success"
    ran = [(r["step_name"], r["machine_name"]) for r in task["step_runs"]]
    assert sorted(ran) == sorted((r["action_name"], r["machine_name"]) for r in order)
    await dispatches.expect_none(0.3)


async def test_a_plan_that_cannot_deploy_says_why(
    client: httpx.AsyncClient, fake_gateway: FakeAgentGateway
) -> None:
    scenario = Scenario()
    fake_gateway.add_machine(scenario.space_id, scenario.environment_id, "db-01", ["db"])
    request = scenario.request([step("Deploy", ["web"])])

    body = (await client.post(plan_url(scenario), json=request.model_dump(mode="json"))).json()

    assert body["can_deploy"] is False
    assert body["error"].startswith(f"No deployment targets in {scenario.environment_name}")

    allowed = request.model_copy(
        update={
            "options": DeploymentOptionsV1(
                connectivity=ConnectivityPolicyV1(allow_deployments_to_no_targets=True)
            )
        }
    )
    body = (await client.post(plan_url(scenario), json=allowed.model_dump(mode="json"))).json()
    assert body["can_deploy"] is True
    assert body["steps"][0]["runs"] is False and "is skipped" in body["steps"][0]["reason"]
    assert body["order"] == []


def assert_problem(response: httpx.Response, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    for fragment in fragments:
        assert fragment in response.text


async def test_bad_plan_requests_get_problems(
    client: httpx.AsyncClient, fake_gateway: FakeAgentGateway
) -> None:
    scenario = Scenario()
    good = scenario.request([step("Deploy", ["web"])]).model_dump(mode="json")

    assert_problem(await client.post(plan_url(scenario), json={"steps": []}), 422)
    assert_problem(
        await client.post(plan_url(scenario), json={**good, "unknown": 1}), 422, "unknown"
    )
    assert_problem(await client.post("/api/v1/spaces/not-a-uuid/deployment-plans", json=good), 422)
    assert_problem(
        await client.post(plan_url(scenario), json={**good, "space_id": str(scenario.project_id)}),
        422,
        "does not match",
    )
    assert_problem(
        await client.post(plan_url(scenario), json={**good, "environment_id": "prod"}),
        422,
        "environment_id",
    )
    no_script = scenario.request([step("Deploy", ["web"], body=" ")]).model_dump(mode="json")
    assert_problem(await client.post(plan_url(scenario), json=no_script), 422, "no script")
    unknown_space = "/api/v1/spaces/00000000-0000-0000-0000-000000000404/deployment-plans"
    assert_problem(await client.post(unknown_space, json=good), 404, "space not found")
    fake_gateway.fail_next(scenario.space_id, 1)
    assert_problem(await client.post(plan_url(scenario), json=good), 503, "answered 503")
