"""Automatic promotion end to end on a real NATS: `deployment.finished` envelopes published
as the orchestrator publishes them, including duplicates and re-published copies."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from cephalo_common.contracts import (
    DEPLOYMENT_FINISHED,
    DEPLOYMENT_REQUESTED,
    DeploymentFinishedV1,
)
from cephalo_common.messaging.envelope import Envelope, new_envelope
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.settings import NatsSettings

ORCHESTRATOR = "cephalo://deploy-orchestrator"


@pytest.fixture
async def broker(nats_url: str) -> AsyncIterator[NatsBroker]:
    broker = NatsBroker(NatsSettings(url=nats_url), name="orchestrator-stand-in")
    await broker.start()
    await broker.wait_connected(10)
    yield broker
    await broker.close()


@contextlib.asynccontextmanager
async def requested_events(nats_url: str) -> AsyncIterator[list[Envelope]]:
    """Every `deployment.requested` published while the block runs."""
    connection = await nats.connect(nats_url)
    seen: list[Envelope] = []

    async def on_message(message: Any) -> None:
        seen.append(Envelope.from_bytes(message.data))

    subscription = await connection.subscribe(DEPLOYMENT_REQUESTED.filter_subject, cb=on_message)
    try:
        yield seen
    finally:
        await subscription.unsubscribe()
        await connection.close()


def finished(deployment: dict[str, Any], state: str = "Success") -> DeploymentFinishedV1:
    return DeploymentFinishedV1(
        deployment_id=deployment["id"],
        task_id=str(uuid.uuid4()),
        release_id=deployment["release_id"],
        project_id=deployment["project_id"],
        environment_id=deployment["environment_id"],
        state=state,
    )


async def publish(broker: NatsBroker, space_id: str, data: DeploymentFinishedV1) -> Envelope:
    envelope = new_envelope(
        source=ORCHESTRATOR, type=DEPLOYMENT_FINISHED.type, space=space_id, data=data
    )
    await broker.publish(DEPLOYMENT_FINISHED.subject(space_id), envelope)
    return envelope


async def redeliver(nats_url: str, space_id: str, envelope: Envelope) -> None:
    """The same event again, past JetStream's de-duplication (as after a lost ack)."""
    connection = await nats.connect(nats_url)
    try:
        await connection.jetstream().publish(
            DEPLOYMENT_FINISHED.subject(space_id),
            envelope.to_bytes(),
            headers={"Nats-Msg-Id": f"{envelope.id}-again"},
        )
    finally:
        await connection.close()


async def finish(api: Any, broker: NatsBroker, deployment: dict[str, Any]) -> Envelope:
    envelope = await publish(broker, api.id, finished(deployment))

    async def recorded() -> bool:
        current = await api.ok("GET", f"/deployments/{deployment['id']}")
        return bool(current["state"] == "Success")

    await api.wait_for(recorded, timeout=30)
    return envelope


async def test_success_in_the_last_environment_of_phase_one_deploys_phase_two_once(
    api: Any, broker: NatsBroker, nats_url: str
) -> None:
    envs = await api.environments("Dev", "Test", "Staging", "QA", "Prod")
    lifecycle = await api.lifecycle(
        [
            {
                "name": "Development",
                "optional_environment_ids": [envs["Dev"]["id"], envs["Test"]["id"]],
            },
            {
                "name": "Pre-production",
                "automatic_environment_ids": [envs["Staging"]["id"]],
                "optional_environment_ids": [envs["QA"]["id"]],
            },
            {"name": "Production", "automatic_environment_ids": [envs["Prod"]["id"]]},
        ]
    )
    project = await api.project(lifecycle=lifecycle["slug"])
    release = await api.release(project)

    async with requested_events(nats_url) as requested:
        dev = (await api.deploy(release, envs["Dev"])).json()
        await finish(api, broker, dev)
        await asyncio.sleep(0.5)
        assert {d["environment_id"] for d in await api.deployments(release_id=release["id"])} == {
            envs["Dev"]["id"]
        }, "phase 1 is not complete until Test succeeds too"

        test = (await api.deploy(release, envs["Test"])).json()
        envelope = await finish(api, broker, test)
        await redeliver(nats_url, api.id, envelope)
        await publish(broker, api.id, finished(test))

        async def staging_requested() -> bool:
            return any(
                e.data["environment_id"] == envs["Staging"]["id"]
                and e.data["release_id"] == release["id"]
                for e in requested
            )

        await api.wait_for(staging_requested, timeout=30)
        await asyncio.sleep(1.0)

    deployments = await api.deployments(release_id=release["id"])
    by_env = {
        env: [d for d in deployments if d["environment_id"] == envs[env]["id"]] for env in envs
    }
    assert len(by_env["Staging"]) == 1
    assert by_env["Staging"][0]["trigger"] == "AutomaticPromotion"
    assert by_env["QA"] == [] and by_env["Prod"] == []
    staging_events = [
        e
        for e in requested
        if e.data["environment_id"] == envs["Staging"]["id"]
        and e.data["release_id"] == release["id"]
    ]
    assert len(staging_events) == 1
    assert staging_events[0].data["steps"][0]["properties"]["script_body"] == "echo hello"

    progression = await api.ok("GET", f"/releases/{release['id']}/progression")
    assert [p["state"] for p in progression["phases"]] == ["Complete", "Current", "Blocked"]


async def test_a_second_success_in_phase_one_never_deploys_phase_two_again(
    api: Any, broker: NatsBroker
) -> None:
    envs = await api.environments("Dev", "Staging")
    lifecycle = await api.lifecycle(
        [
            {"name": "Development", "optional_environment_ids": [envs["Dev"]["id"]]},
            {"name": "Staging", "automatic_environment_ids": [envs["Staging"]["id"]]},
        ]
    )
    project = await api.project(lifecycle=lifecycle["id"])
    release = await api.release(project)
    first = (await api.deploy(release, envs["Dev"])).json()
    await finish(api, broker, first)

    async def staging_deployed() -> bool:
        return bool(
            await api.deployments(release_id=release["id"], environment_id=envs["Staging"]["id"])
        )

    await api.wait_for(staging_deployed, timeout=30)
    again = await api.ok("POST", f"/deployments/{first['id']}/redeploy", 201, json={})
    assert again["trigger"] == "Redeploy"
    await finish(api, broker, again)
    await asyncio.sleep(0.5)
    assert (
        len(await api.deployments(release_id=release["id"], environment_id=envs["Staging"]["id"]))
        == 1
    )


async def test_a_new_release_goes_to_the_first_phases_automatic_environments(api: Any) -> None:
    envs = await api.environments("Dev", "Test")
    lifecycle = await api.lifecycle(
        [
            {"name": "Development", "automatic_environment_ids": [envs["Dev"]["id"]]},
            {"name": "Testing", "automatic_environment_ids": [envs["Test"]["id"]]},
        ]
    )
    project = await api.project(lifecycle=lifecycle["name"])
    release = await api.release(project)
    deployments = await api.deployments(release_id=release["id"])
    assert [(d["environment_id"], d["trigger"]) for d in deployments] == [
        (envs["Dev"]["id"], "AutomaticPromotion")
    ]


async def test_a_failed_deployment_promotes_nothing(api: Any, broker: NatsBroker) -> None:
    envs = await api.environments("Dev", "Staging")
    lifecycle = await api.lifecycle(
        [
            {"name": "Development", "optional_environment_ids": [envs["Dev"]["id"]]},
            {"name": "Staging", "automatic_environment_ids": [envs["Staging"]["id"]]},
        ]
    )
    release = await api.release(await api.project(lifecycle=lifecycle["id"]))
    dev = (await api.deploy(release, envs["Dev"])).json()
    await publish(broker, api.id, finished(dev, "Failed"))

    async def failed() -> bool:
        return bool((await api.ok("GET", f"/deployments/{dev['id']}"))["state"] == "Failed")

    await api.wait_for(failed, timeout=30)
    await asyncio.sleep(0.3)
    assert len(await api.deployments(release_id=release["id"])) == 1
