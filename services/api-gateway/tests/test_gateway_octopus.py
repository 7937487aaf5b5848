"""The Octopus build-server flow, as Octopus's TypeScript client and GitHub Actions call it,
against real release-service and deploy-orchestrator apps (no agent: the task is found and
stays Queued or Executing; a Success run belongs to the e2e suite)."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from cephalo_gateway.octopus.resources import OCTOPUS_VERSION


def unique(prefix: str) -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


@pytest.fixture
async def octopus(stack: Any) -> Any:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"X-Octopus-ApiKey": stack.admin_key}, timeout=30
    ) as client:
        yield client


async def seed_project(admin: httpx.AsyncClient, name: str) -> dict[str, Any]:
    project = await admin.post("/api/v1/spaces/default/projects", json={"name": name})
    assert project.status_code == 201, project.text
    process = await admin.put(
        f"/api/v1/spaces/default/projects/{project.json()['id']}/deployment-process",
        json={"steps": [{"name": "Hello", "target_roles": ["web"], "script_body": "echo hi"}]},
    )
    assert process.status_code == 200, process.text
    return dict(project.json())


async def seed_environment(admin: httpx.AsyncClient, name: str) -> dict[str, Any]:
    created = await admin.post("/api/v1/spaces/default/environments", json={"name": name})
    assert created.status_code == 201, created.text
    return dict(created.json())


async def test_discovery_answers_like_octopus(octopus: httpx.AsyncClient) -> None:
    root = (await octopus.get("/api")).json()
    assert root["Version"] == OCTOPUS_VERSION == "2025.1.0"
    assert root["Application"] and root["ApiVersion"]
    assert root["Links"]["Spaces"].startswith("/api/spaces")


async def test_a_wrong_key_is_a_401_in_octopus_shape(stack: Any) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as client:
        for path in ("/api", "/api/spaces", "/api/default/tasks/x"):
            response = await client.get(
                path, headers={"X-Octopus-ApiKey": "API-WRONGWRONGWRONGWRONG"}
            )
            assert response.status_code == 401, path
            body = response.json()
            assert body["ErrorMessage"] and body["Errors"], body
        missing = await client.get("/api/spaces")
        assert missing.status_code == 401 and "ErrorMessage" in missing.json()


async def test_the_whole_build_server_flow(
    octopus: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    project = await seed_project(admin, unique("Octo"))
    environment = await seed_environment(admin, unique("Dev"))

    spaces = (
        await octopus.get(
            "/api/spaces", params={"partialName": "Default", "skip": 0, "take": 2147483647}
        )
    ).json()
    assert spaces["TotalResults"] >= 1
    space = next(s for s in spaces["Items"] if s["Name"] == "Default")
    space_id = space["Id"]

    created = await octopus.post(
        f"/api/{space_id}/releases/create/v1",
        json={
            "spaceIdOrName": space_id,
            "spaceName": "Default",
            "ProjectName": project["name"],
            "ReleaseVersion": "1.2.3",
            "ReleaseNotes": "from CI",
            "SomethingNew": True,
        },
    )
    assert created.status_code == 200, created.text
    release = created.json()
    assert release["ReleaseVersion"] == "1.2.3" and release["ReleaseId"]

    deployed = await octopus.post(
        f"/api/{space_id}/deployments/create/untenanted/v1",
        json={
            "spaceName": "Default",
            "ProjectName": project["name"],
            "ReleaseVersion": "1.2.3",
            "EnvironmentNames": [environment["name"]],
        },
    )
    assert deployed.status_code == 200, deployed.text
    [pair] = deployed.json()["DeploymentServerTasks"]
    assert not pair["ServerTaskId"].startswith("pending-"), pair

    deployments = (
        await octopus.get(f"/api/{space_id}/deployments", params={"ids": pair["DeploymentId"]})
    ).json()
    [deployment] = deployments["Items"]
    assert deployment["Id"] == pair["DeploymentId"]
    assert deployment["EnvironmentId"] == environment["id"]
    assert deployment["ReleaseId"] == release["ReleaseId"]

    environments = (
        await octopus.get(
            f"/api/{space_id}/environments", params={"ids": deployment["EnvironmentId"]}
        )
    ).json()
    assert [e["Name"] for e in environments["Items"]] == [environment["name"]]
    one_deployment = await octopus.get(f"/api/{space_id}/deployments/{pair['DeploymentId']}")
    assert one_deployment.json()["Id"] == pair["DeploymentId"]
    one_environment = await octopus.get(f"/api/{space_id}/environments/{environment['id']}")
    assert one_environment.json()["Name"] == environment["name"]

    for path in (
        f"/api/{space_id}/tasks/{pair['ServerTaskId']}",
        f"/api/tasks/{pair['ServerTaskId']}",
    ):
        task = (await octopus.get(path)).json()
        assert task["Id"] == pair["ServerTaskId"]
        assert task["State"] in ("Queued", "Executing")
        assert task["IsCompleted"] is False and task["FinishedSuccessfully"] is False
        assert set(task) >= {"Id", "State", "IsCompleted", "FinishedSuccessfully", "ErrorMessage"}
    listed = (
        await octopus.get(f"/api/{space_id}/tasks", params={"ids": pair["ServerTaskId"]})
    ).json()
    assert [t["Id"] for t in listed["Items"]] == [pair["ServerTaskId"]]


async def test_the_default_space_answers_to_spaces_1(
    octopus: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    project = await seed_project(admin, unique("Alias"))
    created = await octopus.post(
        "/api/Spaces-1/releases/create/v1",
        json={"ProjectName": project["name"], "ReleaseVersion": "0.0.1"},
    )
    assert created.status_code == 200, created.text


async def test_errors_are_octopus_shaped_and_say_what_is_wrong(
    octopus: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    project = await seed_project(admin, unique("Errors"))
    environment = await seed_environment(admin, unique("Stage"))
    base = "/api/default"
    first = await octopus.post(
        f"{base}/releases/create/v1",
        json={"ProjectName": project["name"], "ReleaseVersion": "2.0.0"},
    )
    assert first.status_code == 200, first.text

    cases: list[tuple[str, dict[str, Any], str]] = [
        ("releases/create/v1", {"ProjectName": "No Such Project"}, "No Such Project"),
        (
            "releases/create/v1",
            {"ProjectName": project["name"], "ReleaseVersion": "2.0.0"},
            "2.0.0",
        ),
        ("releases/create/v1", {}, "ProjectName"),
        (
            "deployments/create/untenanted/v1",
            {
                "ProjectName": project["name"],
                "ReleaseVersion": "9.9.9",
                "EnvironmentNames": [environment["name"]],
            },
            "9.9.9",
        ),
        (
            "deployments/create/untenanted/v1",
            {
                "ProjectName": project["name"],
                "ReleaseVersion": "2.0.0",
                "EnvironmentNames": ["Nowhere"],
            },
            "Nowhere",
        ),
        (
            "deployments/create/untenanted/v1",
            {
                "ProjectName": project["name"],
                "ReleaseVersion": "2.0.0",
                "EnvironmentNames": [environment["name"], environment["name"]],
            },
            environment["name"],
        ),
    ]
    for path, body, mentioned in cases:
        response = await octopus.post(f"{base}/{path}", json=body)
        assert response.status_code == 400, (path, body, response.text)
        answer = response.json()
        assert set(answer) == {"ErrorMessage", "Errors"}, answer
        assert mentioned in answer["ErrorMessage"] + " ".join(answer["Errors"]), answer

    again = await octopus.post(
        f"{base}/releases/create/v1",
        json={
            "ProjectName": project["name"],
            "ReleaseVersion": "2.0.0",
            "IgnoreIfAlreadyExists": True,
        },
    )
    assert again.status_code == 200 and again.json()["ReleaseId"] == first.json()["ReleaseId"]

    not_json = await octopus.post(f"{base}/releases/create/v1", content=b"{nope")
    assert not_json.status_code == 400 and "ErrorMessage" in not_json.json()
    unknown_task = await octopus.get(f"{base}/tasks/{uuid.uuid4()}")
    assert unknown_task.status_code == 404 and "ErrorMessage" in unknown_task.json()
    for kind, path in (("Deployment", "deployments"), ("Environment", "environments")):
        missing_id = str(uuid.uuid4())
        unknown = await octopus.get(f"{base}/{path}/{missing_id}")
        assert unknown.status_code == 404
        assert unknown.json()["ErrorMessage"] == f"{kind} '{missing_id}' was not found."
    unknown_space = await octopus.get("/api/nowhere-space/tasks", params={"ids": "x"})
    assert unknown_space.status_code == 404 and "ErrorMessage" in unknown_space.json()


async def test_no_partial_deployments_when_one_environment_is_unknown(
    octopus: httpx.AsyncClient, admin: httpx.AsyncClient
) -> None:
    project = await seed_project(admin, unique("Partial"))
    environment = await seed_environment(admin, unique("Only"))
    await octopus.post(
        "/api/default/releases/create/v1",
        json={"ProjectName": project["name"], "ReleaseVersion": "1.0.0"},
    )
    response = await octopus.post(
        "/api/default/deployments/create/untenanted/v1",
        json={
            "ProjectName": project["name"],
            "ReleaseVersion": "1.0.0",
            "EnvironmentNames": [environment["name"], "Missing"],
        },
    )
    assert response.status_code == 400
    await asyncio.sleep(0.2)
    listed = await admin.get(
        "/api/v1/spaces/default/deployments", params={"project_id": project["id"]}
    )
    body = listed.json()
    assert (body["items"] if isinstance(body, dict) else body) == []
