"""Health checks per machine policy: connectivity or a script, with history and events.

Checks run concurrently across machines, each bounded by its policy's timeout, and never
block deployments (a health check script runs without the isolation mutex).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.msg import Msg
from sqlalchemy import func, update

from cephalo_agent_gateway.db.models import Machine
from cephalo_agent_gateway.events.contracts import TARGET_HEALTH_CHANGED, TargetHealthChangedV1
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import (
    Orchestrator,
    Space,
    StepEvents,
    eventually,
    unique,
)
from cephalo_common.db.session import unit_of_work
from cephalo_common.messaging.envelope import Envelope


@pytest.fixture
async def health_events(nats_url: str, space: Space) -> AsyncIterator[list[TargetHealthChangedV1]]:
    received: list[TargetHealthChangedV1] = []
    connection = await nats.connect(nats_url)

    async def on_event(message: Msg) -> None:
        received.append(Envelope.from_bytes(message.data).payload(TargetHealthChangedV1))

    await connection.subscribe(TARGET_HEALTH_CHANGED.subject(str(space.id)), cb=on_event)
    await connection.flush()
    yield received
    await connection.close()


async def create_policy(http: Any, space: Space, **fields: Any) -> dict[str, Any]:
    body = {"name": unique("policy"), **fields}
    response = await http.post(f"/api/v1/spaces/{space.id}/machine-policies", json=body)
    assert response.status_code == 201, response.text
    policy: dict[str, Any] = response.json()
    return policy


async def use_policy(http: Any, space: Space, machine_id: str, policy: dict[str, Any]) -> None:
    response = await http.patch(
        f"/api/v1/spaces/{space.id}/machines/{machine_id}",
        json={"machine_policy_id": policy["id"]},
    )
    assert response.status_code == 200, response.text


async def check(http: Any, space: Space, machine_id: str) -> dict[str, Any]:
    response = await http.post(f"/api/v1/spaces/{space.id}/machines/{machine_id}/health-checks")
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def test_connectivity_checks_record_history_and_announce_changes(
    served: Any,
    space: Space,
    real_agents: Any,
    agent: FakeAgent,
    health_events: list[TargetHealthChangedV1],
) -> None:
    online = await real_agents(served, space)
    async with served.client() as http:
        offline = (
            await http.post(
                f"/api/v1/spaces/{space.id}/machines/register",
                json={
                    "name": unique("offline"),
                    "certificate_pem": agent.certificate_pem,
                    "environments": ["Production"],
                },
            )
        ).json()
        healthy = await check(http, space, online.machine_id)
        again = await check(http, space, online.machine_id)
        unavailable = await check(http, space, offline["id"])
        health = (
            await http.get(f"/api/v1/spaces/{space.id}/machines/{online.machine_id}/health")
        ).json()
        machine = (await http.get(f"/api/v1/spaces/{space.id}/machines/{offline['id']}")).json()
        missing = await http.post(
            f"/api/v1/spaces/{space.id}/machines/{uuid.uuid4()}/health-checks"
        )
        elsewhere = await http.get(
            f"/api/v1/spaces/{uuid.uuid4()}/machines/{online.machine_id}/health"
        )

    assert (healthy["status"], healthy["previous_status"]) == ("Healthy", "Unknown")
    assert healthy["message"].startswith("Connected: agent ")
    assert (again["status"], again["previous_status"]) == ("Healthy", "Healthy")
    assert unavailable["status"] == "Unavailable"
    assert (missing.status_code, elsewhere.status_code) == (404, 404)
    assert health["status"] == "Healthy" and health["checked_at"] is not None
    assert [h["status"] for h in health["history"]] == ["Healthy", "Healthy"]
    assert machine["health_status"] == "Unavailable"
    await eventually(lambda: len(health_events) == 2)
    changes = {(e.machine_id, e.previous_status, e.status) for e in health_events}
    assert changes == {
        (online.machine_id, "Unknown", "Healthy"),
        (offline["id"], "Unknown", "Unavailable"),
    }


async def test_script_checks_report_warnings_failures_and_timeouts(
    served: Any, space: Space, real_agents: Any
) -> None:
    agent = await real_agents(served, space)
    cases = [
        ({"health_check_script": "echo fine"}, "Healthy"),
        ({"health_check_script": "echo low disk >&2"}, "HasWarnings"),
        ({"health_check_script": "echo broken; exit 2"}, "Unhealthy"),
        ({"health_check_script": "sleep 30", "health_check_timeout_seconds": 1}, "Unhealthy"),
    ]
    async with served.client() as http:
        results = []
        for fields, _ in cases:
            policy = await create_policy(http, space, health_check_type="RunScript", **fields)
            await use_policy(http, space, agent.machine_id, policy)
            results.append(await check(http, space, agent.machine_id))
        invalid = await http.post(
            f"/api/v1/spaces/{space.id}/machine-policies",
            json={"name": unique("p"), "health_check_type": "RunScript"},
        )

    assert [r["status"] for r in results] == [expected for _, expected in cases]
    assert "low disk" in results[1]["message"]
    assert "exited with 2" in results[2]["message"] and "broken" in results[2]["message"]
    assert "did not finish within" in results[3]["message"]
    assert invalid.status_code == 422
    assert not agent.agent.scripts.active_tickets()  # the hung check was cancelled


async def test_scheduled_checks_run_concurrently_and_a_hung_one_times_out(
    served: Any, space: Space, real_agents: Any, tmp_path: Path
) -> None:
    """Each script waits until both have started: only concurrent checks can pass.

    One scan of the monitor claims every due machine and checks them at once.
    """
    meeting = tmp_path / "meeting"
    meeting.mkdir()
    rendezvous = (
        f"touch {meeting}/$CEPHALO_TICKET; "
        f"for i in $(seq 100); do [ $(ls {meeting} | wc -l) -ge 2 ] && exit 0; sleep 0.05; done; "
        "exit 1"
    )
    sessionmaker = served.app.state.runtime.sessionmaker
    async with unit_of_work(sessionmaker) as session:  # other tests' machines: not now
        await session.execute(
            update(Machine)
            .where(Machine.space_id != space.id)
            .values(health_next_at=func.now() + func.make_interval(0, 0, 0, 1))
        )
    agents = [await real_agents(served, space, start=False) for _ in range(3)]
    async with served.client() as http:
        meet = await create_policy(
            http, space, health_check_type="RunScript", health_check_script=rendezvous
        )
        hang = await create_policy(
            http,
            space,
            health_check_type="RunScript",
            health_check_script="sleep 60",
            health_check_timeout_seconds=1,
        )
        for agent, policy in zip(agents, (meet, meet, hang), strict=True):
            await use_policy(http, space, agent.machine_id, policy)
        await asyncio.gather(*(agent.start() for agent in agents))
        connections = served.gateway.connections
        for agent in agents:  # attached on the gateway side too, not just dialled
            await eventually(lambda a=agent: connections.is_connected(uuid.UUID(a.machine_id)))
        assert await served.gateway.health.scan() == 3

        async def statuses() -> list[str] | None:
            found = []
            for agent in agents:
                url = f"/api/v1/spaces/{space.id}/machines/{agent.machine_id}"
                found.append((await http.get(url)).json()["health_status"])
            return found if "Unknown" not in found else None

        found = await eventually(statuses)
    assert found == ["Healthy", "Healthy", "Unhealthy"]


async def test_health_checks_and_deployment_steps_never_wait_for_each_other(
    served: Any,
    space: Space,
    real_agents: Any,
    events: StepEvents,
    orchestrator: Orchestrator,
    tmp_path: Path,
) -> None:
    agent = await real_agents(served, space)
    marks = tmp_path / "marks"
    marks.mkdir()
    async with served.client() as http:
        # A deployment step holds the target's isolation mutex and waits for the health check.
        step = await orchestrator.dispatch(
            space,
            agent.machine_id,
            script_body=f"echo started; while [ ! -f {marks}/health ]; do sleep 0.05; done",
        )
        await eventually(lambda: events.lines(step.data["ticket"]) == ["started"])
        policy = await create_policy(
            http,
            space,
            health_check_type="RunScript",
            health_check_script=f"touch {marks}/health",
            health_check_timeout_seconds=10,
        )
        await use_policy(http, space, agent.machine_id, policy)
        assert (await check(http, space, agent.machine_id))["status"] == "Healthy"
        assert (await events.wait_finished(step.data["ticket"])).exit_code == 0

        # A health check script runs and waits for a deployment step.
        waiting = await create_policy(
            http,
            space,
            health_check_type="RunScript",
            health_check_script=f"while [ ! -f {marks}/step ]; do sleep 0.05; done",
            health_check_timeout_seconds=10,
        )
        await use_policy(http, space, agent.machine_id, waiting)
        checking = asyncio.create_task(check(http, space, agent.machine_id))
        second = await orchestrator.dispatch(
            space, agent.machine_id, script_body=f"touch {marks}/step"
        )
        assert (await events.wait_finished(second.data["ticket"])).exit_code == 0
        assert (await checking)["status"] == "Healthy"


async def test_machine_policies_api(served: Any, space: Space) -> None:
    base = f"/api/v1/spaces/{space.id}/machine-policies"
    async with served.client() as http:
        listed = (await http.get(base)).json()
        (default,) = [p for p in listed if p["is_default"]]
        created = await create_policy(http, space, health_check_interval_seconds=60)
        duplicate = await http.post(base, json={"name": created["name"].upper()})
        updated = await http.put(
            f"{base}/{created['id']}",
            json={"name": created["name"], "health_check_interval_seconds": 120},
        )
        bad = await http.post(base, json={"name": "x", "health_check_timeout_seconds": 0})
        other_space = await http.get(
            f"/api/v1/spaces/{uuid.uuid4()}/machine-policies/{created['id']}"
        )
        delete_default = await http.delete(f"{base}/{default['id']}")
        deleted = await http.delete(f"{base}/{created['id']}")
    assert default["name"] == "Default Machine Policy"
    assert default["health_check_type"] == "OnlyConnectivity"
    assert duplicate.status_code == 409
    assert updated.json()["health_check_interval_seconds"] == 120
    assert (bad.status_code, other_space.status_code) == (422, 404)
    assert (delete_default.status_code, deleted.status_code) == (409, 204)
