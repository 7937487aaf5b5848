"""Package steps on an SSH target through the whole stack: every service as a real process,
a real OpenSSH sshd on 127.0.0.1 (key-only auth as the current user), a real zip pushed to
the feed through the api-gateway, the step runner pushed over SFTP.

Issue 8 Done-when 1 (SSH part) and 2 on SSH: versioned folder, JSON keys replaced, the
package's scripts in the task log, an output read by the next step, an artifact downloadable
from the task through the api-gateway; DeployFailed on a failing Deploy with the previous
version untouched, "skip if already installed". Done-when 5: an offline drop target's bundle,
downloaded from the task, extracted elsewhere and run with `deploy.sh`, installs the package. The runner's remote base is a temporary
directory, so nothing is written to the real home directory.
"""

from __future__ import annotations

import asyncio
import getpass
import hashlib
import io
import json
import os
import subprocess
import tarfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncssh
import httpx
import pytest

from cephalo_agent_gateway.testing.sshd import SSHD, Sshd, listening, write_key
from cephalo_common.embedded import free_port
from cephalo_dev import demo
from cephalo_dev.sample_packages import conventions_package, push
from cephalo_dev.shared_stack import SharedStack
from cephalo_dev.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(whole_stack: SharedStack) -> SharedStack:
    """The session's shared stack (cephalo_dev.shared_stack): names here are unique."""
    return whole_stack


@pytest.fixture(scope="module")
def remote_base(stack: SharedStack) -> Path:
    """Where the SSH runner puts its files on the target (here the stack's state directory)."""
    return stack.ssh_remote_base


@pytest.fixture(scope="module")
def client_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


@pytest.fixture(scope="module")
def sshd(tmp_path_factory: pytest.TempPathFactory, client_key: asyncssh.SSHKey) -> Iterator[Sshd]:
    if not os.path.exists(SSHD):
        pytest.fail("sshd is missing: `make test` installs openssh-server")
    directory = tmp_path_factory.mktemp("sshd")
    (directory / "authorized_keys").write_bytes(client_key.export_public_key("openssh"))
    host_key = directory / "host_ed25519"
    write_key(host_key, asyncssh.generate_private_key("ssh-ed25519"))
    server = Sshd(free_port(), directory)
    server.start(host_key)
    try:
        asyncio.run(listening(server.port))
        yield server
    finally:
        server.stop()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[demo.Api]:
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, timeout=30, headers=stack.auth_headers
    ) as client:
        yield demo.Api(client)


async def register_ssh_target(
    api: demo.Api, sshd: Sshd, key: asyncssh.SSHKey, environment: str, role: str
) -> dict[str, Any]:
    body = {
        "name": f"ssh-{role}",
        "environments": [environment],
        "roles": [role],
        "host": "127.0.0.1",
        "port": sshd.port,
        "username": getpass.getuser(),
        "private_key": key.export_private_key("openssh").decode(),
    }
    machine: dict[str, Any] = await api.call("POST", "/machines/ssh", json=body)
    return machine


async def deploy(
    api: demo.Api,
    environment_name: str,
    project: dict[str, Any],
    steps: list[dict[str, Any]],
    packages: list[dict[str, str]],
) -> demo.DeploymentOutcome:
    environment = await api.call("GET", f"/environments/{environment_name}")
    await api.call("PUT", f"/projects/{project['id']}/deployment-process", json={"steps": steps})
    existing = await api.call("GET", f"/projects/{project['id']}/releases")
    count = existing["total"] if isinstance(existing, dict) else len(existing)
    release = await api.call(
        "POST",
        f"/projects/{project['id']}/releases",
        json={"version": f"1.0.{count + 1}", "packages": packages},
    )
    return await demo.deploy_and_wait(api, release, environment, timeout=90)


def texts(outcome: demo.DeploymentOutcome) -> list[str]:
    return [line["text"] for line in outcome.log]


def package_steps(package_id: str, role: str) -> list[dict[str, Any]]:
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
                        "skip_if_already_installed": True,
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


@pytest.mark.timeout(300)
async def test_a_package_deploys_over_ssh_with_an_artifact_fails_cleanly_and_skips_when_installed(
    stack: Stack, sshd: Sshd, client_key: asyncssh.SSHKey, api: demo.Api, remote_base: Path
) -> None:
    role = f"ssh-{uuid.uuid4().hex[:6]}"
    environment_name = f"Ssh {uuid.uuid4().hex[:6]}"
    await api.call("POST", "/environments", json={"name": environment_name})
    machine = await register_ssh_target(api, sshd, client_key, environment_name, role)
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
    steps = package_steps(package_id, role)

    outcome = await deploy(api, environment_name, project, steps, pinned("1.0.0"))
    assert outcome.state == "Success", (outcome.task, texts(outcome))
    [folder] = (remote_base / "apps").glob(f"*/{package_id}/1.0.0")
    settings = json.loads((folder / "appsettings.json").read_text())
    assert settings["Logging"]["LogLevel"]["Default"] == "Debug"
    assert settings["Port"] == 8080 and settings["Name"] == "shop"
    log = [line["text"] for line in outcome.log if line.get("machine") == machine["name"]]
    assert f"predeploy of {environment_name}" in log, log
    assert f"deploy running in {folder}" in log
    assert "postdeploy done" in log
    assert "installed=1.0.0" in log

    task_id = outcome.task["id"]
    artifacts = await api.call("GET", f"/tasks/{task_id}/artifacts")
    assert len(artifacts) == 1, [text for text in texts(outcome) if "rtifact" in text]
    [artifact] = artifacts
    assert (artifact["name"], artifact["step_name"]) == ("report.txt", "Deploy Shop")
    assert artifact["machine_name"] == machine["name"]
    download = await api.client.get(f"{api.base}/tasks/{task_id}/artifacts/{artifact['id']}")
    assert download.status_code == 200, download.text
    assert download.content == b"report of 1.0.0\n"
    assert artifact["sha256"] == hashlib.sha256(download.content).hexdigest()
    assert "report.txt" in download.headers["content-disposition"]
    missing = await api.client.get(f"{api.base}/tasks/{task_id}/artifacts/{uuid.uuid4()}")
    assert missing.status_code == 404, missing.text
    elsewhere = await api.client.get(f"{api.base}/tasks/{uuid.uuid4()}/artifacts")
    assert elsewhere.status_code == 404, elsewhere.text

    failed = await deploy(api, environment_name, project, steps, pinned("2.0.0"))
    assert failed.state == "Failed", texts(failed)
    assert "deployfailed cleanup" in texts(failed)
    assert "postdeploy done" not in texts(failed)
    assert not any(text.startswith("installed=") for text in texts(failed))
    assert json.loads((folder / "appsettings.json").read_text()) == settings
    assert (folder / "version.txt").read_text() == "1.0.0"

    again = await deploy(api, environment_name, project, steps, pinned("1.0.0"))
    assert again.state == "Success", texts(again)
    assert "predeploy of" not in " ".join(texts(again))
    assert any("already installed" in text for text in texts(again)), texts(again)
    assert sorted(path.name for path in folder.parent.iterdir()) == ["1.0.0", "2.0.0"]


@pytest.mark.timeout(240)
async def test_an_offline_drop_is_downloaded_from_its_task_and_installs_with_deploy_sh(
    stack: Stack, api: demo.Api, tmp_path: Path
) -> None:
    role = f"drop-{uuid.uuid4().hex[:6]}"
    environment_name = f"Drop {uuid.uuid4().hex[:6]}"
    await api.call("POST", "/environments", json={"name": environment_name})
    body = {"name": f"drop-{role}", "environments": [environment_name], "roles": [role]}
    machine = await api.call("POST", "/machines/offline-drop", json=body)
    assert machine["mode"] == "offline-drop"
    package_id = f"Shop{uuid.uuid4().hex[:6]}"
    await push(api, package_id, "1.0.0", conventions_package("1.0.0"))
    project = await api.call("POST", "/projects", json={"name": f"Drop {uuid.uuid4().hex[:6]}"})
    current = await api.call("GET", f"/projects/{project['id']}/variables")
    await api.call(
        "PUT",
        f"/projects/{project['id']}/variables",
        json={
            "version": current["version"],
            "variables": [{"name": "Logging.LogLevel.Default", "value": "Debug"}],
        },
    )
    steps = package_steps(package_id, role)[:1]

    outcome = await deploy(api, environment_name, project, steps, pinned("1.0.0"))
    assert outcome.state == "Success", (outcome.task, texts(outcome))
    assert any("deploy.sh" in text for text in texts(outcome)), texts(outcome)
    [artifact] = await api.call("GET", f"/tasks/{outcome.task['id']}/artifacts")
    assert artifact["name"].endswith(".tar.gz")
    download = await api.client.get(
        f"{api.base}/tasks/{outcome.task['id']}/artifacts/{artifact['id']}"
    )
    assert download.status_code == 200, download.text

    copied = tmp_path / "air-gapped"
    with tarfile.open(fileobj=io.BytesIO(download.content)) as archive:
        archive.extractall(copied, filter="data")
    home = tmp_path / "home"
    result = subprocess.run(
        ["sh", str(copied / "deploy.sh")],
        env={**os.environ, "CEPHALO_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert f"predeploy of {environment_name}" in result.stdout
    assert "postdeploy done" in result.stdout
    [folder] = (home / "apps").glob(f"*/{package_id}/1.0.0")
    settings = json.loads((folder / "appsettings.json").read_text())
    assert settings["Logging"]["LogLevel"]["Default"] == "Debug"
    assert (folder / "report.txt").read_text() == "report of 1.0.0\n"
