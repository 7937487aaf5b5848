"""The tasks API on real Postgres: listing, detail, log paging, and every failure path.

Tasks are seeded through the domain with the workers off, so they stay Queued and the
answers are deterministic.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from fastapi import FastAPI

from cephalo_common.db.session import unit_of_work
from cephalo_common.ids import utc_now
from cephalo_orchestrator.app import create_app
from cephalo_orchestrator.db.repositories import Repositories
from cephalo_orchestrator.domain.tasks import accept_deployment
from cephalo_orchestrator.settings import OrchestratorSettings

from ..flow import Scenario, deployment_envelope, step


@pytest.fixture
async def app(make_settings: Callable[..., OrchestratorSettings]) -> FastAPI:
    return create_app(make_settings(run_workers=False))


async def seed(app: FastAPI, scenario: Scenario, version: str = "1.0.0") -> tuple[str, str]:
    """A queued task for a new deployment in the scenario's space: (task id, deployment id)."""
    request = scenario.request([step("Deploy web", ["web"])], version=version)
    async with unit_of_work(app.state.runtime.sessionmaker) as session:
        task = await accept_deployment(
            Repositories(session),
            scenario.space,
            request,
            now=utc_now(),
            caused_by=deployment_envelope(scenario.space, request),
        )
    assert task is not None
    return str(task.id), request.deployment_id


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["type"].startswith("https://")
    return dict(body)


async def test_tasks_are_listed_newest_first_with_a_total(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    scenario = Scenario()
    first, _ = await seed(app, scenario, "1.0.0")
    second, _ = await seed(app, scenario, "1.0.1")
    third, _ = await seed(app, scenario, "1.0.2")
    listed = await client.get(scenario.tasks_url())
    assert listed.status_code == 200
    assert [task["id"] for task in listed.json()] == [third, second, first]
    assert listed.headers["x-total-count"] == "3"
    page = await client.get(scenario.tasks_url(), params={"limit": 1, "offset": 1})
    assert [task["id"] for task in page.json()] == [second]


async def test_tasks_filter_by_deployment_and_state(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    scenario = Scenario()
    task_id, deployment_id = await seed(app, scenario)
    await seed(app, scenario, "2.0.0")
    by_deployment = await client.get(scenario.tasks_url(), params={"deployment_id": deployment_id})
    assert [task["id"] for task in by_deployment.json()] == [task_id]
    queued = await client.get(scenario.tasks_url(), params={"state": "Queued"})
    assert len(queued.json()) == 2
    failed = await client.get(scenario.tasks_url(), params={"state": "Failed"})
    assert failed.json() == [] and failed.headers["x-total-count"] == "0"


async def test_a_task_shows_its_deployment_and_step_runs(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    scenario = Scenario()
    task_id, deployment_id = await seed(app, scenario, "3.1.4")
    task = (await client.get(f"{scenario.tasks_url()}/{task_id}")).json()
    assert task["deployment_id"] == deployment_id
    assert task["release_version"] == "3.1.4"
    assert task["environment_name"] == scenario.environment_name
    assert task["state"] == "Queued" and task["is_completed"] is False
    assert task["step_count"] == 1 and task["step_runs"] == []
    assert "steps" not in task


async def test_the_log_is_read_in_order_and_incrementally(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    scenario = Scenario()
    task_id, _ = await seed(app, scenario)
    lines = (await client.get(f"{scenario.tasks_url()}/{task_id}/log")).json()
    assert [line["text"] for line in lines] == [
        f"Queued deployment of Web App release 1.0.0 to {scenario.environment_name}"
    ]
    assert set(lines[0]) == {"id", "time", "source", "machine", "step", "sequence", "text"}
    assert lines[0]["source"] == "info"
    newer = await client.get(
        f"{scenario.tasks_url()}/{task_id}/log", params={"after": lines[-1]["id"]}
    )
    assert newer.json() == []


async def test_a_task_of_another_space_is_not_found(
    app: FastAPI, client: httpx.AsyncClient
) -> None:
    task_id, _ = await seed(app, Scenario())
    elsewhere = Scenario()
    assert_problem(await client.get(f"{elsewhere.tasks_url()}/{task_id}"), 404)
    assert_problem(await client.get(f"{elsewhere.tasks_url()}/{task_id}/log"), 404)
    assert (await client.get(elsewhere.tasks_url())).json() == []


async def test_an_unknown_task_is_not_found(client: httpx.AsyncClient) -> None:
    scenario = Scenario()
    body = assert_problem(await client.get(f"{scenario.tasks_url()}/{uuid.uuid4()}"), 404)
    assert "was not found in this space" in str(body["detail"])


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/v1/spaces/default/tasks", "path.space_id"),
        (f"/api/v1/spaces/{uuid.uuid4()}/tasks/not-a-uuid", "path.task_id"),
        (f"/api/v1/spaces/{uuid.uuid4()}/tasks/12/log", "path.task_id"),
        (f"/api/v1/spaces/{uuid.uuid4()}/tasks?state=Done", "query.state"),
        (f"/api/v1/spaces/{uuid.uuid4()}/tasks?deployment_id=x", "query.deployment_id"),
        (f"/api/v1/spaces/{uuid.uuid4()}/tasks?limit=0", "query.limit"),
        (f"/api/v1/spaces/{uuid.uuid4()}/tasks?limit=100000", "query.limit"),
        (f"/api/v1/spaces/{uuid.uuid4()}/tasks?offset=-1", "query.offset"),
        (f"/api/v1/spaces/{uuid.uuid4()}/tasks/{uuid.uuid4()}/log?after=-1", "query.after"),
    ],
    ids=[
        "space-not-a-uuid",
        "task-not-a-uuid",
        "log-of-task-not-a-uuid",
        "state",
        "deployment-id",
        "limit-0",
        "limit-too-large",
        "offset",
        "after",
    ],
)
async def test_malformed_input_is_a_422_problem_naming_the_field(
    client: httpx.AsyncClient, path: str, field: str
) -> None:
    body = assert_problem(await client.get(path), 422)
    assert field in {error["field"] for error in body["errors"]}  # type: ignore[attr-defined]
