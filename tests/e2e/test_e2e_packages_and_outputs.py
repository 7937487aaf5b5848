"""Package steps and output variables through the whole stack: every service as a real
process, two real agents over mTLS, a real zip pushed to the feed through the api-gateway.

Issue 4 Done-when 5 (output variables per machine and unscoped, a sensitive one masked) and
issue 8 Done-when 1 (agent part) and 2: versioned folder, JSON keys replaced, the package's
scripts in the task log, an output read by the next step, an artifact downloadable from the
task (its bytes fetched from the agent, SHA-256 checked), DeployFailed on a failing Deploy
with the previous version untouched, "skip if already installed".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cephalo_dev import demo
from cephalo_dev.agents import LocalAgent
from cephalo_dev.processes import stop
from cephalo_dev.sample_packages import conventions_package, push
from cephalo_dev.shared_stack import SharedStack
from cephalo_dev.stack import Stack

pytestmark = pytest.mark.e2e
SECRET = "s3cr3t-token-value"


@pytest.fixture(scope="module")
def stack(whole_stack: SharedStack) -> SharedStack:
    """The session's shared stack (cephalo_dev.shared_stack): names here are unique."""
    return whole_stack


@pytest.fixture(scope="module")
def role() -> str:
    return f"app-{uuid.uuid4().hex[:6]}"


@pytest.fixture(scope="module")
def environment_name(stack: Stack) -> str:
    name = f"Pkg {uuid.uuid4().hex[:6]}"
    with httpx.Client(base_url=stack.gateway_url, timeout=30, headers=stack.auth_headers) as client:
        response = client.post("/api/v1/spaces/default/environments", json={"name": name})
        assert response.status_code == 201, response.text
    return name


@pytest.fixture(scope="module")
def agents(
    stack: Stack, environment_name: str, role: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[LocalAgent]]:
    started = []
    try:
        for index in (1, 2):
            local = LocalAgent(
                f"{role}-{index}",
                tmp_path_factory.mktemp(f"agent{index}"),
                stack.gateway_url,
                api_key=stack.api_key,
            )
            local.register([environment_name], [role])
            started.append((local, local.start(stack.logs_dir / f"{local.name}.log")))
        yield [local for local, _ in started]
    finally:
        for _, process in started:
            stop(process)


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[demo.Api]:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=30, headers=stack.auth_headers
    ) as client:
        yield demo.Api(client)


async def wait_connected(api: demo.Api, names: list[str]) -> None:
    async with asyncio.timeout(30):
        while True:
            machines = await api.call("GET", "/machines")
            connected = {m["name"] for m in machines if m["connected"]}
            if set(names) <= connected:
                return
            await asyncio.sleep(0.2)


async def deploy(
    api: demo.Api,
    environment_name: str,
    steps: list[dict[str, Any]],
    packages: list[dict[str, str]] | None = None,
    project: dict[str, Any] | None = None,
) -> tuple[demo.DeploymentOutcome, dict[str, Any]]:
    environment = await api.call("GET", f"/environments/{environment_name}")
    if project is None:
        project = await api.call("POST", "/projects", json={"name": f"E2E {uuid.uuid4().hex[:8]}"})
    await api.call("PUT", f"/projects/{project['id']}/deployment-process", json={"steps": steps})
    existing = await api.call("GET", f"/projects/{project['id']}/releases")
    count = existing["total"] if isinstance(existing, dict) else len(existing)
    release = await api.call(
        "POST",
        f"/projects/{project['id']}/releases",
        json={"version": f"1.0.{count + 1}", "packages": packages or []},
    )
    outcome = await demo.deploy_and_wait(api, release, environment, timeout=60)
    return outcome, project


def texts(outcome: demo.DeploymentOutcome) -> list[str]:
    return [line["text"] for line in outcome.log]


def lines_of(outcome: demo.DeploymentOutcome, machine: str) -> list[str]:
    return [line["text"] for line in outcome.log if line.get("machine") == machine]


async def test_output_variables_flow_per_machine_and_unscoped_and_sensitive_ones_are_masked(
    stack: Stack, agents: list[LocalAgent], api: demo.Api, environment_name: str, role: str
) -> None:
    names = [agent.name for agent in agents]
    await wait_connected(api, names)
    first = (
        'set_cephalovariable "Color" "blue-$CEPHALO_VAR_CEPHALO_MACHINE_NAME"\n'
        f'set_cephalovariable "Token" "{SECRET}" -sensitive\n'
        'echo "step one done"\n'
    )
    second = (
        'echo "mine=#{Cephalo.Action[Step 1].Output.Color}"\n'
        f'echo "first=#{{Cephalo.Action[Step 1].Output[{names[0]}].Color}}"\n'
        f'echo "second=#{{Cephalo.Action[Step 1].Output[{names[1]}].Color}}"\n'
        'echo "token=#{Cephalo.Action[Step 1].Output.Token}"\n'
        'echo "helper=$(get_cephalovariable "Octopus.Action[Step 1].Output.Color")"\n'
    )
    outcome, _ = await deploy(
        api,
        environment_name,
        [
            {"name": "Step 1", "target_roles": [role], "script_body": first},
            {"name": "Step 2", "target_roles": [role], "script_body": second},
        ],
    )
    assert outcome.state == "Success", (outcome.task, texts(outcome))
    for name in names:
        own = lines_of(outcome, name)
        assert f"mine=blue-{name}" in own, own
        assert f"helper=blue-{name}" in own, own
        assert f"first=blue-{names[0]}" in own
        assert f"second=blue-{names[1]}" in own
        assert "token=********" in own, own
    whole = json.dumps(outcome.log)
    assert SECRET not in whole


async def artifact_downloads(
    api: demo.Api, outcome: demo.DeploymentOutcome, machine: str, content: bytes
) -> None:
    """The artifact the Deploy script made on the agent, downloaded through the gateway."""
    task_id = outcome.task["id"]
    artifacts = await api.call("GET", f"/tasks/{task_id}/artifacts")
    mine = [artifact for artifact in artifacts if artifact["machine_name"] == machine]
    assert len(mine) == 1, [text for text in texts(outcome) if "rtifact" in text]
    [artifact] = mine
    assert (artifact["name"], artifact["step_name"]) == ("report.txt", "Deploy Shop")
    download = await api.client.get(f"{api.base}/tasks/{task_id}/artifacts/{artifact['id']}")
    assert download.status_code == 200, download.text
    assert download.content == content
    assert artifact["sha256"] == hashlib.sha256(content).hexdigest()


async def test_a_package_deploys_with_its_conventions_fails_cleanly_and_skips_when_installed(
    stack: Stack,
    agents: list[LocalAgent],
    api: demo.Api,
    environment_name: str,
    role: str,
    tmp_path: Path,
) -> None:
    agent = agents[0]
    await wait_connected(api, [local.name for local in agents])
    package_id = f"Shop{uuid.uuid4().hex[:6]}"
    await push(api, package_id, "1.0.0", conventions_package("1.0.0"))
    await push(api, package_id, "2.0.0", conventions_package("2.0.0", deploy_exit=4))
    project = await api.call("POST", "/projects", json={"name": f"Shop {uuid.uuid4().hex[:6]}"})
    current = await api.call("GET", f"/projects/{project['id']}/variables")
    await api.call(
        "PUT",
        f"/projects/{project['id']}/variables",
        json={
            "version": current["version"],
            "variables": [
                {"name": "Logging.LogLevel.Default", "value": "Debug"},
                {"name": "Port", "value": "8080"},
            ],
        },
    )

    def steps(skip: bool) -> list[dict[str, Any]]:
        return [
            {
                "name": "Deploy Shop",
                "target_roles": [role],
                "actions": [
                    {
                        "action_type": "cephalo.package",
                        "packages": [{"package_id": package_id}],
                        "properties": {
                            "structured_variables_targets": "appsettings.json",
                            "skip_if_already_installed": skip,
                        },
                    }
                ],
            },
            {
                "name": "Report",
                "target_roles": [role],
                "script_body": 'echo "installed=#{Cephalo.Action[Deploy Shop].Output.AppVersion}"\n',
            },
        ]

    def pinned(version: str) -> list[dict[str, str]]:
        return [{"action_name": "Deploy Shop", "version": version}]

    outcome, project = await deploy(api, environment_name, steps(True), pinned("1.0.0"), project)
    assert outcome.state == "Success", (outcome.task, texts(outcome))
    [folder] = (agent.home / "apps").glob(f"*/{package_id}/1.0.0")
    settings = json.loads((folder / "appsettings.json").read_text())
    assert settings["Logging"]["LogLevel"]["Default"] == "Debug"
    assert settings["Port"] == 8080
    assert settings["Name"] == "shop"
    log = lines_of(outcome, agent.name)
    assert f"predeploy of {environment_name}" in log
    assert f"deploy running in {folder}" in log
    assert "postdeploy done" in log
    assert "installed=1.0.0" in log
    await artifact_downloads(api, outcome, agent.name, b"report of 1.0.0\n")

    failed, _ = await deploy(api, environment_name, steps(True), pinned("2.0.0"), project)
    assert failed.state == "Failed", texts(failed)
    assert "deployfailed cleanup" in lines_of(failed, agent.name)
    assert "postdeploy done" not in texts(failed)
    assert not any(text.startswith("installed=") for text in texts(failed))
    assert json.loads((folder / "appsettings.json").read_text()) == settings
    assert (folder / "version.txt").read_text() == "1.0.0"

    again, _ = await deploy(api, environment_name, steps(True), pinned("1.0.0"), project)
    assert again.state == "Success", texts(again)
    assert "predeploy of" not in " ".join(texts(again))
    assert any("already installed" in text for text in texts(again)), texts(again)
    assert sorted(path.name for path in folder.parent.iterdir()) == ["1.0.0", "2.0.0"]
