"""release-service's events on a real NATS: what it announces and what it records."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable

import httpx
import nats

from cephalo_common.contracts import (
    DEPLOYMENT_FINISHED,
    DEPLOYMENT_REQUESTED,
    TASK_STATE_CHANGED,
    DeploymentFinishedV1,
    DeploymentRequestedV1,
    TaskStateChangedV1,
)
from cephalo_common.messaging.envelope import Envelope, new_envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import NatsSettings

ProjectFactory = Callable[..., Awaitable[dict[str, object]]]


async def requested_deployment(
    client: httpx.AsyncClient, new_project: ProjectFactory
) -> tuple[dict[str, str], str]:
    project = await new_project()
    env = (
        await client.post(
            "/api/v1/spaces/default/environments", json={"name": f"Env-{uuid.uuid4().hex[:8]}"}
        )
    ).json()
    release = (
        await client.post(
            f"/api/v1/spaces/default/projects/{project['id']}/releases", json={"version": "1.0"}
        )
    ).json()
    response = await client.post(
        "/api/v1/spaces/default/deployments",
        json={"release_id": release["id"], "environment_id": env["id"]},
    )
    assert response.status_code == 201, response.text
    return response.json(), env["name"]


async def test_a_deployment_request_is_announced_with_the_release_steps(
    client: httpx.AsyncClient, nats_url: str, new_project: ProjectFactory
) -> None:
    connection = await nats.connect(nats_url)
    subscription = await connection.subscribe(DEPLOYMENT_REQUESTED.filter_subject)
    try:
        deployment, env_name = await requested_deployment(client, new_project)
        async with asyncio.timeout(10):
            while True:
                envelope = Envelope.from_bytes((await subscription.next_msg(timeout=10)).data)
                if envelope.data["deployment_id"] == deployment["id"]:
                    break
    finally:
        await connection.close()
    payload = envelope.payload(DeploymentRequestedV1)
    assert payload.environment_name == env_name
    assert payload.steps[0].properties["script_body"] == "echo hello"
    assert envelope.type == "cephalo.release.deployment.requested.v1"


async def test_the_orchestrators_verdict_is_recorded_once(
    client: httpx.AsyncClient, nats_url: str, new_project: ProjectFactory
) -> None:
    deployment, _ = await requested_deployment(client, new_project)
    space = deployment["space_id"]
    task_id = str(uuid.uuid4())
    broker = NatsBroker(NatsSettings(url=nats_url), name="release-test")
    await broker.start()
    await broker.wait_connected(10)
    try:
        started = TaskStateChangedV1(
            task_id=task_id, deployment_id=deployment["id"], state="Executing"
        )
        await broker.publish(
            TASK_STATE_CHANGED.subject(space),
            new_envelope(source="test", type=TASK_STATE_CHANGED.type, space=space, data=started),
        )
        finished = DeploymentFinishedV1(
            deployment_id=deployment["id"],
            task_id=task_id,
            release_id=deployment["release_id"],
            project_id=deployment["project_id"],
            environment_id=deployment["environment_id"],
            state="Success",
        )
        envelope = new_envelope(
            source="test", type=DEPLOYMENT_FINISHED.type, space=space, data=finished
        )
        await broker.publish(DEPLOYMENT_FINISHED.subject(space), envelope)
        late = DeploymentFinishedV1(**{**finished.model_dump(), "state": "Failed"})
        await broker.publish(
            DEPLOYMENT_FINISHED.subject(space),
            new_envelope(source="test", type=DEPLOYMENT_FINISHED.type, space=space, data=late),
        )
    finally:
        await broker.close()
    url = f"/api/v1/spaces/default/deployments/{deployment['id']}"
    async with asyncio.timeout(15):
        while (await client.get(url)).json()["state"] != "Success":
            await asyncio.sleep(0.1)
    await asyncio.sleep(0.5)
    recorded = (await client.get(url)).json()
    assert recorded["state"] == "Success"
    assert recorded["task_id"] == task_id
