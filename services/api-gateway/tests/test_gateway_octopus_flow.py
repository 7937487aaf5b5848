"""The Octopus build-server flow end to end on the whole stack with a real agent, sending
exactly the requests Octopus's TypeScript client and GitHub Actions send (push-package,
create-release, deploy-release, await-task), down to the task's `Success`."""

from __future__ import annotations

import asyncio
import io
import uuid
import zipfile
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from cephalo_dev.agents import LocalAgent
from cephalo_dev.processes import stop
from cephalo_dev.stack import Stack

pytestmark = pytest.mark.timeout(300)

ROLE = f"octo-{uuid.uuid4().hex[:6]}"
ENVIRONMENT = f"Octo Dev {uuid.uuid4().hex[:6]}"
PACKAGE = f"OctoShop{uuid.uuid4().hex[:6]}"
PROJECT = f"Octo Shop {uuid.uuid4().hex[:6]}"


def package_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("Deploy.sh", 'echo "deployed by the build server"\n')
    return buffer.getvalue()


@pytest.fixture(scope="module")
def agent(whole_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalAgent]:
    with httpx.Client(
        base_url=whole_stack.gateway_url, timeout=60, headers=whole_stack.auth_headers
    ) as admin:
        base = "/api/v1/spaces/default"
        created = admin.post(f"{base}/environments", json={"name": ENVIRONMENT})
        assert created.status_code == 201, created.text
        project = admin.post(f"{base}/projects", json={"name": PROJECT})
        assert project.status_code == 201, project.text
        step = {
            "name": "Deploy",
            "target_roles": [ROLE],
            "actions": [{"action_type": "cephalo.package", "packages": [{"package_id": PACKAGE}]}],
        }
        process = admin.put(
            f"{base}/projects/{project.json()['id']}/deployment-process", json={"steps": [step]}
        )
        assert process.status_code == 200, process.text
    local = LocalAgent(
        f"{ROLE}-agent",
        tmp_path_factory.mktemp("octo-agent"),
        whole_stack.gateway_url,
        api_key=whole_stack.api_key,
    )
    local.register([ENVIRONMENT], [ROLE])
    running = local.start(whole_stack.logs_dir / "octo-agent.log")
    try:
        yield local
    finally:
        stop(running)


@pytest.fixture
async def octopus(whole_stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """What the Octopus clients send on every call: the key header, nothing else."""
    async with httpx.AsyncClient(
        base_url=whole_stack.gateway_url,
        headers={"X-Octopus-ApiKey": whole_stack.api_key},
        timeout=60,
        follow_redirects=False,
    ) as client:
        yield client


async def wait_connected(whole_stack: Stack, name: str) -> None:
    async with (
        httpx.AsyncClient(
            base_url=whole_stack.gateway_url, headers=whole_stack.auth_headers, timeout=30
        ) as admin,
        asyncio.timeout(60),
    ):
        while True:
            machines = (await admin.get("/api/v1/spaces/default/machines")).json()
            items = machines["items"] if isinstance(machines, dict) else machines
            if any(m["name"] == name and m["connected"] for m in items):
                return
            await asyncio.sleep(0.3)


def ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), (response.request.url, response.text)
    return response.json()


async def test_push_create_deploy_and_await_the_task_to_success(
    whole_stack: Stack, agent: LocalAgent, octopus: httpx.AsyncClient
) -> None:
    await wait_connected(whole_stack, agent.name)
    root = ok(await octopus.get("/api"))
    assert root["Version"] >= "2022.3.5512"

    spaces = ok(
        await octopus.get(
            "/api/spaces", params={"partialName": "Default", "skip": 0, "take": 2147483647}
        )
    )
    [space] = [s for s in spaces["Items"] if s["Name"] == "Default"]
    space_id = space["Id"]

    pushed = await octopus.post(
        f"/api/{space_id}/packages/raw",
        params={"overwriteMode": "FailIfExists"},
        files={"fileToUpload": (f"{PACKAGE}.1.0.0.zip", package_zip(), "application/zip")},
    )
    assert pushed.status_code in (200, 201), pushed.text

    release = ok(
        await octopus.post(
            f"/api/{space_id}/releases/create/v1",
            json={
                "spaceIdOrName": space_id,
                "ProjectName": PROJECT,
                "ReleaseVersion": "1.0.0",
                "PackageVersion": "1.0.0",
                "IgnoreIfAlreadyExists": False,
            },
        )
    )
    assert release["ReleaseVersion"] == "1.0.0" and release["ReleaseId"]

    deployed = ok(
        await octopus.post(
            f"/api/{space_id}/deployments/create/untenanted/v1",
            json={
                "spaceIdOrName": space_id,
                "ProjectName": PROJECT,
                "ReleaseVersion": "1.0.0",
                "EnvironmentNames": [ENVIRONMENT],
                "Variables": {},
                "UseGuidedFailure": False,
            },
        )
    )
    [pair] = deployed["DeploymentServerTasks"]

    deployments = ok(
        await octopus.get(
            f"/api/{space_id}/deployments", params={"take": 1, "ids": pair["DeploymentId"]}
        )
    )
    [deployment] = deployments["Items"]
    assert deployment["Id"] == pair["DeploymentId"] and deployment["TaskId"]

    lookup = {"ids": deployment["EnvironmentId"], "skip": 0, "take": 1}
    v2 = await octopus.get(f"/api/{space_id}/environments/v2", params=lookup)
    if v2.status_code == 404:
        assert set(v2.json()) >= {"ErrorMessage", "Errors"}
        v2 = await octopus.get(
            f"/api/{space_id}/environments",
            params={"take": 1, "ids": deployment["EnvironmentId"]},
        )
    assert [e["Name"] for e in ok(v2)["Items"]] == [ENVIRONMENT]

    task = await await_task(octopus, space_id, pair["ServerTaskId"])
    assert task["State"] == "Success", task
    assert task["IsCompleted"] is True and task["FinishedSuccessfully"] is True


async def await_task(octopus: httpx.AsyncClient, space_id: str, task_id: str) -> dict[str, Any]:
    """await-task's loop: the list form with comma-joined ids until the task completes."""
    async with asyncio.timeout(120):
        while True:
            tasks = ok(
                await octopus.get(
                    f"/api/{space_id}/tasks", params={"skip": 0, "take": 300, "ids": task_id}
                )
            )
            [task] = tasks["Items"]
            if task["IsCompleted"]:
                return dict(task)
            await asyncio.sleep(0.5)
