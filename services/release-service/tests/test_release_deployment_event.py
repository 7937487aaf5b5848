"""`deployment.requested` carries the space, channel, requester and run options; the
requester comes from the api-gateway's signed `X-Cephalo-Identity` header."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import nats

from cephalo_common.contracts import DEPLOYMENT_REQUESTED, DeploymentRequestedV1
from cephalo_common.messaging.envelope import Envelope
from cephalo_common.security import internal_token
from cephalo_release.settings import ReleaseSettings

STEPS = [
    {"name": "Migrate", "target_roles": ["db"], "script_body": "echo migrate"},
    {"name": "Web", "target_roles": ["web"], "script_body": "echo web"},
]


@contextlib.asynccontextmanager
async def requested(nats_url: str) -> AsyncIterator[list[Envelope]]:
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


def identity(settings: ReleaseSettings, name: str, audience: str = "release-service") -> str:
    secret = settings.internal_token_secret.get_secret_value().encode()
    return internal_token.sign({"sub": "u-1", "name": name, "via": "session"}, audience, secret)


async def test_the_event_says_who_where_and_how(
    api: Any, nats_url: str, release_settings: ReleaseSettings
) -> None:
    env = await api.ok(
        "POST", "/environments", 201, json={"name": "Prod", "use_guided_failure": True}
    )
    policy = {"skip_unavailable_targets": True, "exclude_unhealthy_targets": True}
    project = await api.project(steps=STEPS, connectivity_policy=policy)
    await api.ok("POST", f"/projects/{project['id']}/channels", 201, json={"name": "Hotfix"})
    release = await api.release(project, channel="Hotfix")
    machine = "0190b1a2-0000-7000-8000-000000000001"
    headers = {internal_token.HEADER: identity(release_settings, "alice")}
    async with requested(nats_url) as seen:
        response = await deploy(
            api, release, env, headers, specific_machine_ids=[machine], skip_actions=["Migrate"]
        )
        assert response.status_code == 201, response.text
        deployment = response.json()
        await api.wait_for(lambda: _seen(seen, deployment["id"]))
    event = next(
        DeploymentRequestedV1.model_validate(e.data)
        for e in seen
        if e.data["deployment_id"] == deployment["id"]
    )
    assert deployment["deployed_by"] == "alice" and event.deployed_by == "alice"
    assert (event.space_id, event.channel_id, event.channel_name) == (
        api.id,
        release["channel_id"],
        "Hotfix",
    )
    options = event.options
    assert options.specific_machine_ids == [machine] and options.excluded_machine_ids == []
    assert (
        options.skip_action_ids == deployment["skip_actions"] and len(options.skip_action_ids) == 1
    )
    assert options.use_guided_failure is True
    assert options.connectivity.skip_machine_behavior == "SkipUnavailableMachines"
    assert options.connectivity.exclude_unhealthy_targets is True
    assert options.connectivity.allow_deployments_to_no_targets is False
    dashboard = await api.ok("GET", "/dashboard")
    item = next(i for i in dashboard["items"] if i["deployment_id"] == deployment["id"])
    assert item["deployed_by"] == "alice"

    again = await api.request(
        "POST", f"/deployments/{deployment['id']}/redeploy", json={}, headers=headers
    )
    assert again.status_code == 201 and again.json()["deployed_by"] == "alice"


async def test_an_identity_that_does_not_verify_is_a_401(
    api: Any, release_settings: ReleaseSettings
) -> None:
    env = await api.environment()
    project = await api.project()
    release = await api.release(project)
    for token in (
        "not-a-token",
        identity(release_settings, "mallory", audience="package-feed"),
        identity(release_settings, "mallory")[:-4] + "AAAA",
    ):
        response = await deploy(api, release, env, {internal_token.HEADER: token})
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
    assert await api.deployments(release_id=release["id"]) == []
    anonymous = await api.deploy(release, env)
    assert anonymous.status_code == 201 and anonymous.json()["deployed_by"] is None


async def deploy(
    api: Any, release: dict[str, Any], env: dict[str, Any], headers: dict[str, str], **fields: Any
) -> Any:
    body = {"release_id": release["id"], "environment_id": env["id"], **fields}
    return await api.request("POST", "/deployments", json=body, headers=headers)


async def _seen(seen: list[Envelope], deployment_id: str) -> bool:
    return any(envelope.data["deployment_id"] == deployment_id for envelope in seen)
