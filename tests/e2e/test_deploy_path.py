"""The walking skeleton end to end: every service as a real process, a real agent over mTLS.

Public API only (the api-gateway): environment → agent registration → project → release →
deployment → orchestrator → agent-gateway → agent → task log → `deployment.finished`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import nats
import pytest

from cephalo_common.contracts import DEPLOYMENT_FINISHED
from cephalo_common.embedded import free_port
from cephalo_common.messaging.envelope import Envelope
from cephalo_dev import demo
from cephalo_dev.agents import LocalAgent
from cephalo_dev.processes import stop
from cephalo_dev.shared_stack import CANCEL_GRACE_SECONDS, SharedStack
from cephalo_dev.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(whole_stack: SharedStack) -> SharedStack:
    """The session's shared stack (cephalo_dev.shared_stack): names here are unique."""
    return whole_stack


@pytest.fixture(scope="module")
def role() -> str:
    return f"web-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def environment_name(stack: Stack) -> str:
    name = f"E2E {uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=stack.gateway_url, timeout=30, headers=stack.auth_headers) as client:
        response = client.post("/api/v1/spaces/default/environments", json={"name": name})
        assert response.status_code == 201, response.text
    return name


@pytest.fixture(scope="module")
def agent(
    stack: Stack, environment_name: str, role: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalAgent]:
    local = LocalAgent(
        f"agent-{role}", tmp_path_factory.mktemp("agent"), stack.gateway_url, api_key=stack.api_key
    )
    local.register([environment_name], [role])
    process = local.start(stack.logs_dir / "agent.log")
    try:
        yield local
    finally:
        stop(process)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[demo.Api]:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=30, headers=stack.auth_headers
    ) as client:
        yield demo.Api(client)


@contextlib.asynccontextmanager
async def finished_events(nats_url: str) -> AsyncIterator[list[Envelope]]:
    """Collect every `deployment.finished` published while the block runs."""
    client = await nats.connect(nats_url)
    received: list[Envelope] = []

    async def on_message(message: Any) -> None:
        received.append(Envelope.from_bytes(message.data))

    subscription = await client.subscribe(DEPLOYMENT_FINISHED.filter_subject, cb=on_message)
    try:
        yield received
    finally:
        await subscription.unsubscribe()
        await client.close()


async def wait_connected(api: demo.Api, name: str) -> None:
    async with asyncio.timeout(30):
        while True:
            machines = await api.call("GET", "/machines")
            if any(m["name"] == name and m["connected"] for m in machines):
                return
            await asyncio.sleep(0.2)


async def deploy_script(
    api: demo.Api, environment_name: str, role: str, script: str
) -> demo.DeploymentOutcome:
    environment = await api.call("GET", f"/environments/{environment_name}")
    project = await demo.ensure_project(api, f"E2E {uuid.uuid4().hex[:8]}", role)
    await api.call(
        "PUT",
        f"/projects/{project['id']}/deployment-process",
        json={"steps": [{"name": "Run it", "target_roles": [role], "script_body": script}]},
    )
    release = await demo.create_release(api, project)
    return await demo.deploy_and_wait(api, release, environment, timeout=90)


async def log_texts(api: demo.Api, outcome: demo.DeploymentOutcome, *expected: str) -> list[str]:
    """The task log once it holds `expected`: step.log and step.finished are consumed apart,
    so a step's last lines may land just after the task turned terminal (known, issue 7)."""
    async with asyncio.timeout(15):
        while True:
            log = await api.call("GET", f"/tasks/{outcome.task['id']}/log")
            texts = [line["text"] for line in (log["items"] if isinstance(log, dict) else log)]
            if all(text in texts for text in expected):
                return texts
            await asyncio.sleep(0.2)


async def test_a_release_deploys_to_a_polling_agent_through_the_public_api(
    stack: Stack, agent: LocalAgent, api: demo.Api, environment_name: str, role: str
) -> None:
    await wait_connected(api, agent.name)
    async with finished_events(stack.nats_url) as events:
        outcome = await deploy_script(
            api,
            environment_name,
            role,
            'echo "hello from the e2e agent"\necho "second line" >&2\necho "env=$CEPHALO_VAR_OCTOPUS_ENVIRONMENT_NAME"\n',
        )
        async with asyncio.timeout(10):
            while not any(e.data["deployment_id"] == outcome.deployment_id for e in events):
                await asyncio.sleep(0.1)

    assert outcome.state == "Success", outcome.task
    texts = await log_texts(api, outcome, "hello from the e2e agent", "second line")
    assert texts.count("hello from the e2e agent") == 1
    assert texts.count("second line") == 1
    assert f"env={environment_name}" in texts
    finished = next(e for e in events if e.data["deployment_id"] == outcome.deployment_id)
    assert finished.data["state"] == "Success"
    assert finished.type == DEPLOYMENT_FINISHED.type

    async with asyncio.timeout(10):
        while (await api.call("GET", f"/deployments/{outcome.deployment_id}"))[
            "state"
        ] != "Success":
            await asyncio.sleep(0.1)


async def test_a_failing_script_fails_the_deployment_with_its_exit_code(
    stack: Stack, agent: LocalAgent, api: demo.Api, environment_name: str, role: str
) -> None:
    await wait_connected(api, agent.name)
    outcome = await deploy_script(api, environment_name, role, 'echo "about to fail"\nexit 3\n')
    assert outcome.state == "Failed"
    texts = await log_texts(api, outcome, "about to fail")
    assert any("exit code 3" in text for text in texts), texts


async def test_a_deployment_with_no_matching_targets_fails_with_a_reason(
    stack: Stack, api: demo.Api, environment_name: str
) -> None:
    outcome = await deploy_script(api, environment_name, "no-such-role", "echo never")
    assert outcome.state == "Failed"
    assert "no-such-role" in str(outcome.task.get("error") or outcome.task.get("reason"))


def test_every_service_answers_its_probes(stack: Stack) -> None:
    with httpx.Client(timeout=10) as client:
        for port in (
            stack.ports.gateway,
            stack.ports.release,
            stack.ports.orchestrator,
            stack.ports.feed,
            stack.ports.agent_gateway,
        ):
            base = f"http://127.0.0.1:{port}"
            assert client.get(base + "/livez").status_code == 200
            assert client.get(base + "/readyz").status_code == 200
            assert "cephalo_http_requests_total" in client.get(base + "/metrics").text


def cephalo(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cephalo_cli", "--server", stack.gateway_url, *args],
        env={**os.environ, "CEPHALO_API_KEY": stack.api_key},
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_the_cli_deploys_and_waits_with_octopus_exit_codes(
    stack: Stack, agent: LocalAgent, api: demo.Api, environment_name: str, role: str
) -> None:
    await wait_connected(api, agent.name)
    project = await demo.ensure_project(api, f"CLI {uuid.uuid4().hex[:8]}", role)
    await api.call(
        "PUT",
        f"/projects/{project['id']}/deployment-process",
        json={
            "steps": [{"name": "Echo", "target_roles": [role], "script_body": "echo from-the-cli"}]
        },
    )
    created = await asyncio.to_thread(
        cephalo, stack, "release", "create", "--project", project["name"], "--version", "3.1.4"
    )
    assert created.returncode == 0, created.stderr
    deployed = await asyncio.to_thread(
        cephalo,
        stack,
        "release",
        "deploy",
        "--project",
        project["name"],
        "--version",
        "latest",
        "--to",
        environment_name,
        "--wait",
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    assert "from-the-cli" in deployed.stdout
    missing = await asyncio.to_thread(
        cephalo,
        stack,
        "release",
        "deploy",
        "--project",
        project["name"],
        "--version",
        "9.9.9",
        "--to",
        environment_name,
    )
    assert missing.returncode == 1 and "9.9.9" in missing.stderr


def test_the_cli_reports_an_unreachable_server_with_exit_code_3() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cephalo_cli",
            "--server",
            f"http://127.0.0.1:{free_port()}",
            "environment",
            "list",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3
    assert "cannot reach" in result.stderr


def test_the_public_api_refuses_a_request_without_a_key(stack: Stack) -> None:
    response = httpx.get(stack.gateway_url + "/api/v1/spaces/default/environments", timeout=10)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")


async def _task_of(api: demo.Api, deployment_id: str, *states: str) -> dict[str, Any]:
    while True:
        tasks = await api.call("GET", f"/tasks?deployment_id={deployment_id}")
        items = tasks["items"] if isinstance(tasks, dict) else tasks
        if items and items[0]["state"] in states:
            return dict(items[0])
        await asyncio.sleep(0.2)


async def test_cancelling_a_script_that_ignores_sigterm_ends_canceled_and_frees_the_target(
    stack: Stack, agent: LocalAgent, api: demo.Api, environment_name: str, role: str
) -> None:
    await wait_connected(api, agent.name)
    environment = await api.call("GET", f"/environments/{environment_name}")
    project = await demo.ensure_project(api, f"E2E {uuid.uuid4().hex[:8]}", role)
    stubborn = "trap '' TERM\necho started\nsleep 300\n"
    await api.call(
        "PUT",
        f"/projects/{project['id']}/deployment-process",
        json={"steps": [{"name": "Hang", "target_roles": [role], "script_body": stubborn}]},
    )
    release = await demo.create_release(api, project)
    deployment = await api.call(
        "POST",
        "/deployments",
        json={"release_id": release["id"], "environment_id": environment["id"]},
    )
    async with asyncio.timeout(60):
        task = await _task_of(api, deployment["id"], "Executing")
        while "started" not in [
            line["text"] for line in await api.call("GET", f"/tasks/{task['id']}/log")
        ]:
            await asyncio.sleep(0.2)

    loop = asyncio.get_running_loop()
    asked = loop.time()
    cancelling = await api.call("POST", f"/tasks/{task['id']}/cancel")
    assert cancelling["state"] == "Cancelling"
    async with asyncio.timeout(CANCEL_GRACE_SECONDS + 10):
        canceled = await _task_of(api, deployment["id"], "Canceled", "Failed", "Success")
    assert canceled["state"] == "Canceled", canceled
    assert loop.time() - asked <= CANCEL_GRACE_SECONDS + 10
    assert canceled["reason"].startswith("Cancellation requested by")

    outcome = await deploy_script(api, environment_name, role, "echo next one\n")
    assert outcome.state == "Success", outcome.task
