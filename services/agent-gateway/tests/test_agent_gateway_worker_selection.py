"""Picking a worker for a step on a pool: healthy (or with warnings), enabled, least busy.

Health and busyness are set in the table directly: the busy runs are leased to another
replica far into the future, so this gateway's supervisor leaves them alone.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import update

from cephalo_agent_gateway.db.models import Machine, ScriptRun
from cephalo_agent_gateway.testing.fake_agent import FakeAgent
from cephalo_agent_gateway.testing.harness import RunningGateway, Space, unique
from cephalo_common.db.session import unit_of_work
from cephalo_common.ids import utc_now


async def _worker(
    gateway: RunningGateway, space: Space, tmp_path: Path, pool: str, health: str
) -> dict[str, Any]:
    agent = FakeAgent(tmp_path / unique("agent"))
    name = unique("worker")
    response = await gateway.client.post(
        f"/api/v1/spaces/{space.id}/workers/register",
        json={"name": name, "certificate_pem": agent.certificate_pem, "worker_pools": [pool]},
    )
    assert response.status_code == 201, response.text
    worker: dict[str, Any] = response.json()
    await _set(gateway, worker["id"], health_status=health)
    return worker


async def _set(gateway: RunningGateway, machine_id: str, **values: Any) -> None:
    async with unit_of_work(gateway.app.state.runtime.sessionmaker) as session:
        await session.execute(
            update(Machine).where(Machine.id == uuid.UUID(machine_id)).values(**values)
        )


async def _busy(gateway: RunningGateway, space: Space, machine_id: str, runs: int) -> None:
    async with unit_of_work(gateway.app.state.runtime.sessionmaker) as session:
        for _ in range(runs):
            session.add(
                ScriptRun(
                    ticket=unique("busy"),
                    space_id=space.id,
                    task_id="task",
                    step_run_id="step",
                    machine_id=uuid.UUID(machine_id),
                    dispatch={},
                    state="Running",
                    last_log_sequence=0,
                    driver="another-replica",
                    lease_until=utc_now() + timedelta(days=1),
                )
            )


async def _next(gateway: RunningGateway, space: Space, pool_id: str) -> Any:
    return await gateway.client.get(f"/api/v1/spaces/{space.id}/worker-pools/{pool_id}/next-worker")


async def test_the_least_busy_healthy_worker_is_picked(
    gateway: RunningGateway, space: Space, tmp_path: Path
) -> None:
    base = f"/api/v1/spaces/{space.id}/worker-pools"
    pool = (await gateway.client.post(base, json={"name": unique("builds")})).json()
    name = pool["name"]
    busy = await _worker(gateway, space, tmp_path, name, "Healthy")
    warned = await _worker(gateway, space, tmp_path, name, "HasWarnings")
    sick = await _worker(gateway, space, tmp_path, name, "Unhealthy")
    await _worker(gateway, space, tmp_path, name, "Unavailable")
    await _worker(gateway, space, tmp_path, name, "Unknown")
    elsewhere = await _worker(gateway, space, tmp_path, "Default Worker Pool", "Healthy")
    await _busy(gateway, space, busy["id"], 2)
    await _busy(gateway, space, warned["id"], 1)

    picks = [(await _next(gateway, space, pool["id"])).json()["id"]]
    await _busy(gateway, space, warned["id"], 2)  # now 3 against 2
    picks.append((await _next(gateway, space, pool["id"])).json()["id"])
    await _set(gateway, busy["id"], is_disabled=True)
    picks.append((await _next(gateway, space, pool["id"])).json()["id"])
    await _set(gateway, warned["id"], health_status="Unavailable")
    none_left = await _next(gateway, space, pool["id"])

    assert picks == [warned["id"], busy["id"], warned["id"]]
    assert sick["id"] not in picks and elsewhere["id"] not in picks
    assert none_left.status_code == 409
    assert "no enabled worker whose health check passed" in none_left.json()["detail"]


async def test_next_worker_failure_paths(
    gateway: RunningGateway, space: Space, tmp_path: Path
) -> None:
    pools = (await gateway.client.get(f"/api/v1/spaces/{space.id}/worker-pools")).json()
    (default,) = pools
    empty = await _next(gateway, space, default["id"])
    unknown = await _next(gateway, space, str(uuid.uuid4()))
    other_space = await gateway.client.get(
        f"/api/v1/spaces/{uuid.uuid4()}/worker-pools/{default['id']}/next-worker"
    )
    not_a_uuid = await _next(gateway, space, "builds")
    assert empty.status_code == 409
    assert (unknown.status_code, other_space.status_code) == (404, 404)
    assert not_a_uuid.status_code == 422
