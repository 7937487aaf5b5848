"""Workers and worker pools: agents registered to pools, a default pool, the pools API.

Workers are not deployment targets (`/machines` never lists them) and their scripts run
without the isolation mutex.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import (
    Orchestrator,
    RunningGateway,
    Space,
    StepEvents,
    eventually,
    unique,
)


def worker_body(agent: FakeAgent, **overrides: object) -> dict[str, object]:
    return {"name": unique("worker"), "certificate_pem": agent.certificate_pem, **overrides}


async def test_workers_join_pools_and_stay_out_of_the_targets(
    gateway: RunningGateway, space: Space, agent: FakeAgent, tmp_path: Path
) -> None:
    client, base = gateway.client, f"/api/v1/spaces/{space.id}"
    pools = (await client.get(f"{base}/worker-pools")).json()
    (default,) = pools
    assert (default["name"], default["is_default"]) == ("Default Worker Pool", True)
    builds = (await client.post(f"{base}/worker-pools", json={"name": "Builds"})).json()

    in_default = await client.post(f"{base}/workers/register", json=worker_body(agent))
    other = FakeAgent(tmp_path / "other")
    in_builds = await client.post(
        f"{base}/workers/register", json=worker_body(other, worker_pools=["builds"])
    )
    assert (in_default.status_code, in_builds.status_code) == (201, 201)
    worker = in_default.json()
    assert worker["worker_pool_ids"] == [default["id"]]
    assert in_builds.json()["worker_pool_ids"] == [builds["id"]]
    assert worker["server_thumbprint"] == gateway.gateway.identity.thumbprint
    assert "environment_ids" not in worker

    listed = (await client.get(f"{base}/workers")).json()
    in_pool = (await client.get(f"{base}/worker-pools/{builds['id']}/workers")).json()
    filtered = (
        await client.get(f"{base}/workers", params={"worker_pool_id": default["id"]})
    ).json()
    assert {w["id"] for w in listed} == {worker["id"], in_builds.json()["id"]}
    assert [w["id"] for w in in_pool] == [in_builds.json()["id"]]
    assert [w["id"] for w in filtered] == [worker["id"]]
    assert (await client.get(f"{base}/machines")).json() == []
    assert (await client.get(f"{base}/machines/{worker['id']}")).status_code == 404
    assert (await client.get(f"{base}/workers/{worker['id']}")).status_code == 200

    assert (await client.delete(f"{base}/worker-pools/{builds['id']}")).status_code == 409
    assert (await client.delete(f"{base}/worker-pools/{default['id']}")).status_code == 409
    assert (await client.delete(f"{base}/workers/{in_builds.json()['id']}")).status_code == 204
    assert (await client.delete(f"{base}/worker-pools/{builds['id']}")).status_code == 204


async def test_worker_and_pool_failure_paths(
    gateway: RunningGateway, space: Space, agent: FakeAgent
) -> None:
    client, base = gateway.client, f"/api/v1/spaces/{space.id}"
    pool = (await client.post(f"{base}/worker-pools", json={"name": unique("pool")})).json()
    duplicate = await client.post(f"{base}/worker-pools", json={"name": pool["name"].upper()})
    unknown_pool = await client.post(
        f"{base}/workers/register", json=worker_body(agent, worker_pools=["Nope"])
    )
    with_environments = await client.post(
        f"{base}/workers/register", json=worker_body(agent, environments=["Production"])
    )
    not_a_space = await client.post(
        f"/api/v1/spaces/{uuid.uuid4()}/workers/register", json=worker_body(agent)
    )
    elsewhere = await client.get(f"/api/v1/spaces/{uuid.uuid4()}/worker-pools/{pool['id']}")
    bad_pool = await client.post(f"{base}/worker-pools", json={"name": ""})
    assert duplicate.status_code == 409
    assert unknown_pool.status_code == 422 and "Nope" in unknown_pool.text
    assert with_environments.status_code == 422
    assert not_a_space.status_code == 404
    assert (elsewhere.status_code, bad_pool.status_code) == (404, 422)

    made_default = await client.post(
        f"{base}/worker-pools", json={"name": unique("main"), "is_default": True}
    )
    pools = (await client.get(f"{base}/worker-pools")).json()
    assert [p["id"] for p in pools if p["is_default"]] == [made_default.json()["id"]]


async def test_a_real_agent_registers_as_a_worker_and_runs_scripts_side_by_side(
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    """No isolation on workers: a second script runs while the first waits for it."""
    async with served.client() as http:
        pool = (
            await http.post(
                f"/api/v1/spaces/{space.id}/worker-pools", json={"name": unique("pool")}
            )
        ).json()
    worker = await real_agents(served, space, worker_pools=[pool["name"]])
    assert worker.agent.config.kind == "worker"
    marker = tmp_path / "second-ran"
    first = await orchestrator.dispatch(
        space,
        worker.machine_id,
        script_body=f"echo waiting; while [ ! -f {marker} ]; do sleep 0.05; done; echo done",
    )
    await eventually(lambda: events.lines(first.data["ticket"]) == ["waiting"])
    second = await orchestrator.dispatch(space, worker.machine_id, script_body=f"touch {marker}")
    assert (await events.wait_finished(second.data["ticket"])).exit_code == 0
    assert (await events.wait_finished(first.data["ticket"])).exit_code == 0
    async with served.client() as http:
        listed = (await http.get(f"/api/v1/spaces/{space.id}/workers")).json()
    assert [w["id"] for w in listed] == [worker.machine_id]


async def test_deployment_steps_on_a_target_run_one_at_a_time(
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    """FullIsolation: the second step waits for the target's mutex and says so.

    The first step holds the mutex until the test lets it go: the gateway holds `start_script`
    until a short script is done, so the first step's output says nothing about whether it
    still runs (it may arrive with its end)."""
    agent = await real_agents(served, space)
    order, go = tmp_path / "order", tmp_path / "go"
    hold = f"i=0; while [ ! -f {go} ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done"
    first = await orchestrator.dispatch(
        space,
        agent.machine_id,
        script_body=f"echo 1-start >> {order}; {hold}; echo 1-end >> {order}",
    )
    await eventually(lambda: order.exists() and order.read_text().split() == ["1-start"])
    second = await orchestrator.dispatch(space, agent.machine_id, script_body=f"echo 2 >> {order}")
    waiting = (
        f"Waiting for the script isolation mutex 'RunningScript', held by script "
        f"{first.data['ticket']}."
    )
    await eventually(lambda: events.lines(second.data["ticket"]) == [waiting])
    assert order.read_text().split() == ["1-start"]
    go.touch()
    finished = await events.wait_finished(second.data["ticket"])
    assert order.read_text().split() == ["1-start", "1-end", "2"]
    assert events.lines(second.data["ticket"]) == [waiting]
    assert finished.last_log_sequence == 1
