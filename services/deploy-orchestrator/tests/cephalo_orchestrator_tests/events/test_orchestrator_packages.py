"""Package steps: each dispatch carries a signed link, SHA-256 and size from the feed; a
missing package fails the step with its name; an unreachable feed is retried.

Real Postgres and NATS; package-feed and agent-gateway are small fakes over real HTTP
(fakes.py: the real feed needs S3 and is exercised by tests/e2e).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from nats.aio.client import Client

from cephalo_common.contracts import ScriptActionSnapshot
from cephalo_common.messaging.nats import NatsBroker
from cephalo_common.testing import running
from cephalo_orchestrator.app import create_app
from cephalo_orchestrator.settings import OrchestratorSettings

from ..fakes import FakeAgentGateway, FakePackageFeed
from ..flow import Dispatches, Scenario, request_deployment, task_log, wait_for_task


@pytest.fixture
async def client(settings: OrchestratorSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running(create_app(settings)) as client:
        yield client


def package_step(name: str, *packages: dict[str, Any]) -> ScriptActionSnapshot:
    return ScriptActionSnapshot(
        id=str(uuid.uuid4()),
        name=name,
        action_type="cephalo.deploy-package",
        target_roles=["web"],
        properties={"packages": list(packages)},
    )


def reference(package_id: str, version: str, **extra: str) -> dict[str, str]:
    return {"name": "", "package_id": package_id, "version": version, **extra}


def machines(gateway: FakeAgentGateway, scenario: Scenario, count: int) -> None:
    for index in range(1, count + 1):
        gateway.add_machine(scenario.space_id, scenario.environment_id, f"web-{index}", ["web"])


async def test_a_package_step_is_dispatched_with_the_feeds_link_hash_and_size(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
    fake_feed: FakePackageFeed,
) -> None:
    scenario = Scenario()
    machines(fake_gateway, scenario, 2)
    detail = fake_feed.add_version(scenario.space_id, "Acme.Web", "1.2.3")
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([package_step("Deploy", reference("Acme.Web", "1.2.3"))])
    await request_deployment(broker, scenario.space, request)

    sent = await dispatches.take(2)
    for dispatch in sent:
        [package] = dispatch.packages
        assert package.package_id == "Acme.Web"
        assert package.sha256 == detail["sha256"]
        assert package.size == detail["size_bytes"]
        assert package.url == (
            f"http://gateway.test:8080/api/v1/spaces/{scenario.space}/packages/Acme.Web/"
            "versions/1.2.3/content?expires=1&signature=abc"
        )
    await dispatches.close()


@pytest.mark.parametrize(
    ("package", "message"),
    [
        (reference("Missing.App", "9.9.9"), "Package Missing.App 9.9.9 was not found"),
        (
            reference("Acme.Web", "1.0.0", feed_id="nuget-org"),
            "comes from feed 'nuget-org'; only the built-in feed",
        ),
    ],
)
async def test_a_package_the_feed_cannot_deliver_fails_the_step_on_every_target(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
    package: dict[str, str],
    message: str,
) -> None:
    scenario = Scenario()
    machines(fake_gateway, scenario, 2)
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    request = scenario.request([package_step("Deploy", package)])
    await request_deployment(broker, scenario.space, request)

    task = await wait_for_task(client, scenario, request.deployment_id, "Failed")
    runs = task["step_runs"]
    assert [run["state"] for run in runs] == ["Failed", "Failed"]
    assert all(message in (run["error"] or "") for run in runs)
    assert 'Step "Deploy"' in (task["reason"] or "")
    log = [line["text"] for line in await task_log(client, scenario, task["id"])]
    assert any(message in text for text in log)
    await dispatches.expect_none(0.5)
    await dispatches.close()


async def test_an_unreachable_feed_is_asked_again_before_the_step_is_dispatched(
    client: httpx.AsyncClient,
    broker: NatsBroker,
    nats_client: Client,
    fake_gateway: FakeAgentGateway,
    fake_feed: FakePackageFeed,
) -> None:
    scenario = Scenario()
    machines(fake_gateway, scenario, 1)
    fake_feed.add_version(scenario.space_id, "Acme.Api", "2.0.0")
    dispatches = await Dispatches.watch(nats_client, scenario.space)
    fake_feed.failures = 2
    request = scenario.request([package_step("Deploy", reference("Acme.Api", "2.0.0"))])
    await request_deployment(broker, scenario.space, request)

    [dispatch] = await dispatches.take(1)
    assert dispatch.packages[0].sha256 is not None
    task = await wait_for_task(client, scenario, request.deployment_id, "Executing")
    log = [line["text"] for line in await task_log(client, scenario, task["id"])]
    assert any('Could not locate the packages of step "Deploy"' in text for text in log)
    await dispatches.close()
